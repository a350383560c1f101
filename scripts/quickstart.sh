#!/usr/bin/env bash
# The main job end to end on a fresh Debian 12 machine: installs what is missing, builds,
# makes a sample call recording (Stream's raw format, as a .zip: four cameras, one of them
# sharing a screen for a while) and renders the composite, the mix as MP3 and every
# participant's audio+video file; then starts the render service (`tessera serve`), submits
# the same call as a job with grpcurl, watches its events to the end and stops the server.
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

# The same call as a job for the service, over gRPC.
grpcurl=target/test-tools/venv/bin/grpcurl
rm -rf sample/serve sample/service-out
mkdir -p sample/serve
TESSERA__SERVER__LISTEN=127.0.0.1:0 TESSERA__SERVER__METRICS_LISTEN=127.0.0.1:0 \
TESSERA__SERVER__DATA_DIR=sample/serve/data TESSERA__LOG__FORMAT=text \
    "$tessera" serve > sample/serve/stdout.log 2> sample/serve/server.log &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' sample/serve/stdout.log)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat sample/serve/server.log; exit 1; }
cat > sample/serve/job.json <<EOF_JOB
{"requestId": "quickstart-1", "spec": {
  "sources": [{"rawArchive": "$(pwd)/sample/call.zip"}],
  "video": {"width": 1280, "height": 720},
  "outputs": [{"kind": "composite"}, {"kind": "composite_audio"}],
  "storage": {"type": "local", "pathPrefix": "$(pwd)/sample/service-out"}}}
EOF_JOB
echo
echo "tessera serve on $addr; CreateRenderJob:"
job_id=$("$grpcurl" -plaintext -d @ "$addr" tessera.v1.RenderService/CreateRenderJob < sample/serve/job.json \
    | sed -n 's/^  "id": "\(.*\)",$/\1/p')
echo "job $job_id; its events:"
"$grpcurl" -plaintext -d "{\"id\": \"$job_id\"}" "$addr" tessera.v1.RenderService/WatchRenderJob \
    | grep -E '"stateChanged"|"url"'
kill -TERM "$server"
wait "$server" || true
trap - EXIT
echo "service outputs:"
ls -l sample/service-out
