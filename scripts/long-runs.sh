#!/usr/bin/env bash
# The full forms of the suite's long tests, which CI runs in a short form (see the README's
# Tests section): a two-hour call with drifting clocks (about 14 minutes here) and a
# ten-minute real-world call, and a ten-minute call rendered in four slices. Run after ./scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

LONG_CALL_S="${LONG_CALL_S:-7200}" cargo test --locked --test long_call -- --nocapture
REAL_WORLD_S="${REAL_WORLD_S:-600}" cargo test --locked --test real_world -- --nocapture
PARALLEL_CALL_S="${PARALLEL_CALL_S:-600}" cargo test --locked --test parallel -- --nocapture
