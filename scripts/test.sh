#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing (scripts/install-deps.sh), then
# `cargo test` against real GStreamer, wgpu on lavapipe (or a real GPU), ffmpeg/ffprobe.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

# lavapipe needs no variables; these only keep wgpu and Mesa from probing EGL/X11 on a
# headless machine. A GPU machine can override WGPU_BACKEND.
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked "$@"

# The deployment files that cannot run here: hadolint, yamllint and checkov.
./scripts/check-deploy.sh
