#!/usr/bin/env bash
# The main job end to end on a fresh Debian 12 machine: installs what is missing, builds,
# makes a sample call recording (Stream's raw format, as a .zip: four cameras, one of them
# sharing a screen for a while) and renders the composite, the mix as MP3 and every
# participant's audio+video file.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

cargo build --locked
tessera=target/debug/tessera

mkdir -p sample
rm -rf sample/out sample/call.zip
"$tessera" synth --output sample/call.zip --participants 4 --duration-s 20 --codecs vp8,h264,vp9 \
    --event alice:screenshare:5000-15000
"$tessera" raw composite --input-file sample/call.zip --output sample/out \
    --audio-only mp3 --individual audio_video,screenshare_audio_video
echo
echo "sample recording: $(pwd)/sample/call.zip"
echo "outputs:"
ls -l sample/out
