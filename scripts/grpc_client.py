#!/usr/bin/env python3
"""A tessera RenderService client in Python (grpcio), generated from proto/ at run time.

    grpc_client.py ADDR JOB.json [--token TOKEN] [--cacert PEM]

Creates the job, follows WatchRenderJob to its end, fetches it again, lists jobs and asks for
the node's status; prints one JSON object with what it saw. Exit status 0 when the job
completed. Needs grpcio and grpcio-tools (scripts/install-deps.sh puts them in
target/test-tools/venv).
"""

import argparse
import importlib
import json
import pathlib
import sys
import tempfile

import grpc
from google.protobuf import json_format
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_stubs(out_dir):
    proto_dir = ROOT / "proto"
    args = [
        "protoc",
        f"-I{proto_dir}",
        f"-I{pathlib.Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(proto_dir / "tessera" / "v1" / "render.proto"),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on proto/tessera/v1/render.proto")
    sys.path.insert(0, str(out_dir))
    return importlib.import_module("tessera.v1.render_pb2"), importlib.import_module("tessera.v1.render_pb2_grpc")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("addr")
    parser.add_argument("job")
    parser.add_argument("--token", help="bearer token")
    parser.add_argument("--cacert", help="PEM of the CA that signed the server's certificate (TLS)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out_dir:
        pb, pb_grpc = load_stubs(pathlib.Path(out_dir))
        metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
        if args.cacert:
            credentials = grpc.ssl_channel_credentials(root_certificates=pathlib.Path(args.cacert).read_bytes())
            channel = grpc.secure_channel(args.addr, credentials)
        else:
            channel = grpc.insecure_channel(args.addr)
        with channel:
            stub = pb_grpc.RenderServiceStub(channel)
            request = json_format.Parse(pathlib.Path(args.job).read_text(), pb.CreateRenderJobRequest())
            job = stub.CreateRenderJob(request, metadata=metadata, timeout=30)
            events = []
            for event in stub.WatchRenderJob(pb.WatchRenderJobRequest(id=job.id), metadata=metadata, timeout=300):
                events.append(json_format.MessageToDict(event))
            final = stub.GetRenderJob(pb.GetRenderJobRequest(id=job.id), metadata=metadata, timeout=30)
            listed = stub.ListRenderJobs(pb.ListRenderJobsRequest(page_size=100), metadata=metadata, timeout=30)
            node = stub.GetNodeStatus(pb.GetNodeStatusRequest(), metadata=metadata, timeout=30)
            try:
                stub.CreateRenderJob(pb.CreateRenderJobRequest(spec=pb.RenderJobSpec()), metadata=metadata, timeout=30)
                invalid = None
            except grpc.RpcError as err:
                invalid = {"code": err.code().name, "details": err.details()}
        print(json.dumps({
            "job": json_format.MessageToDict(final),
            "events": events,
            "listed": [j.id for j in listed.jobs],
            "node": json_format.MessageToDict(node),
            "invalid": invalid,
        }))
        return 0 if final.state == pb.JOB_STATE_COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
