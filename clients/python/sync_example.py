#!/usr/bin/env python3
"""sync_example: the safe way for a Python service to call blueprint-sync.

SyncBlueprint creates paid images upstream, so one intent must never become
two jobs. What makes that safe, in the order this program does it:
  - one request id (a UUID) per intent, generated before the first attempt and
    sent unchanged on every retry: the server answers a repeat with the job
    the first attempt created (or is still creating), never a second one;
  - a deadline (timeout) on every attempt;
  - retries only on UNAVAILABLE and DEADLINE_EXCEEDED, a bounded number of
    times with growing, jittered pauses; every other code is final (a job that
    failed for good answers FAILED_PRECONDITION, not a retryable code);
  - WatchSyncJob until SUCCEEDED, FAILED or CANCELLED, reconnecting when the
    stream breaks (UNAVAILABLE: a restart, a GOAWAY at --max-connection-age) or
    ends without a final state; every watch starts with the job as it is now,
    so a reconnect resumes by itself;
  - the reason from google.rpc.ErrorInfo (grpc-status-details-bin) in every
    error it prints: that, not the message text, is what code may test.

The channel takes its defaults (per-method timeouts, transparent retries of
UNAVAILABLE) from clients/service_config.json.

Needs the stubs generated from proto/ on PYTHONPATH (the build puts them in
build/clients/python; README "Calling blueprint-sync from your service").

Exit status: 0 the job SUCCEEDED, 1 it failed or was cancelled, or a call
failed for good, 2 usage.
"""
import argparse
import random
import sys
import time
import uuid

import grpc

from blueprintsync.v1 import blueprint_sync_pb2 as pb
from blueprintsync.v1 import blueprint_sync_pb2_grpc as pb_grpc
from google.rpc import error_details_pb2, status_pb2

RETRYABLE_SYNC = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# INTERNAL and UNKNOWN too: what a connection cut mid-frame can look like.
RECONNECT_WATCH = RETRYABLE_SYNC + (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
FINAL = (pb.SyncJob.SUCCEEDED, pb.SyncJob.FAILED, pb.SyncJob.CANCELLED)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="127.0.0.1:50051")
    p.add_argument("--service-config", default="clients/service_config.json")
    p.add_argument("--source-region", required=True)
    p.add_argument("--blueprint-id", required=True)
    p.add_argument("--to", required=True, help="destination regions, comma-separated")
    p.add_argument("--request-id", default="", help="default: a new UUID")
    p.add_argument("--attempt-timeout", type=float, default=30.0, help="seconds per attempt")
    p.add_argument("--attempts", type=int, default=5)
    p.add_argument("--watch-timeout", type=float, default=6 * 3600.0, help="seconds")
    args = p.parse_args(argv)
    if args.attempts < 1:
        p.error("--attempts must be at least 1")
    return args


def make_channel(target, service_config_path):
    with open(service_config_path, encoding="utf-8") as f:
        service_config = f.read()
    options = [
        ("grpc.service_config", service_config),
        ("grpc.enable_retries", 1),
        # The server pings every 60 s and closes a connection whose client
        # pings more often than every 30 s: ping at its pace, only during calls.
        ("grpc.keepalive_time_ms", 60000),
        ("grpc.keepalive_timeout_ms", 20000),
        ("grpc.keepalive_permit_without_calls", 0),
        # Reconnect within seconds of a restart, not gRPC's up-to-two-minutes.
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", 3000),
    ]
    return grpc.insecure_channel(target, options=options)


def backoff(attempt):
    """0.25 s, 0.5 s, 1 s, 2 s, 2 s... plus up to 20 % jitter."""
    base = min(0.25 * 2 ** (attempt - 1), 2.0)
    return base + random.uniform(0, base / 5)


def describe(error):
    """The code, the message, and ErrorInfo's reason and metadata."""
    text = f"{error.code().name}: {error.details()}"
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        rich = status_pb2.Status.FromString(value)
        for detail in rich.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                meta = "".join(f" {k}={info.metadata[k]}" for k in sorted(info.metadata))
                text += f" [reason={info.reason} domain={info.domain}{meta}]"
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                for v in bad.field_violations:
                    text += f" [field {v.field}: {v.description}]"
    return text


def sync_with_retries(stub, args):
    """One SyncBlueprint intent: the same request, same request id, every attempt."""
    request_id = args.request_id or str(uuid.uuid4())
    print("request id:", request_id, flush=True)
    request = pb.SyncBlueprintRequest(
        request_id=request_id,
        source_region=args.source_region,
        blueprint_id=args.blueprint_id,
        destination_regions=args.to.split(","),
    )
    attempt = 1
    while True:
        try:
            job = stub.SyncBlueprint(request, timeout=args.attempt_timeout)
            print(f"job: {job.name} state: {pb.SyncJob.State.Name(job.state)} (attempt {attempt})",
                  flush=True)
            return job
        except grpc.RpcError as e:
            # Retrying after these is safe only because the request id is the
            # same: the first attempt may have created the job.
            if e.code() not in RETRYABLE_SYNC or attempt == args.attempts:
                raise
            pause = backoff(attempt)
            print(f"attempt {attempt}: {e.code().name}; retrying with the same request id "
                  f"{request_id} in {pause:.3f}s", flush=True)
            time.sleep(pause)
            attempt += 1


def watch_once(stub, name, deadline, seen):
    """Reads one stream; the job once final, else None (the stream ended early)."""
    for job in stub.WatchSyncJob(pb.WatchSyncJobRequest(name=name),
                                 timeout=max(deadline - time.monotonic(), 0.001)):
        seen["failures"] = 0  # the server answered: start the pauses small again
        if seen.get("state") != job.state:
            print(f"job: {job.name} state: {pb.SyncJob.State.Name(job.state)}", flush=True)
        seen["state"] = job.state
        if job.state in FINAL:
            return job
    return None


def watch_until_done(stub, name, limit):
    deadline = time.monotonic() + limit
    seen = {"failures": 0}
    while True:
        try:
            job = watch_once(stub, name, deadline, seen)
            if job is not None:
                return job
            why = "the stream ended before a final state"
        except grpc.RpcError as e:
            if e.code() not in RECONNECT_WATCH or time.monotonic() >= deadline:
                raise
            why = describe(e)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no final state within {limit} s ({why})")
        seen["failures"] += 1
        pause = backoff(seen["failures"])
        print(f"watch interrupted ({why}); reconnecting in {pause:.3f}s", flush=True)
        time.sleep(pause)


def main(argv):
    args = parse_args(argv)
    try:
        channel = make_channel(args.target, args.service_config)
    except OSError as e:
        print(f"sync_example: reading the service config: {e}", file=sys.stderr)
        return 2
    with channel:
        stub = pb_grpc.BlueprintSyncStub(channel)
        try:
            job = sync_with_retries(stub, args)
        except grpc.RpcError as e:
            print("sync failed:", describe(e), flush=True)
            return 1
        try:
            final = watch_until_done(stub, job.name, args.watch_timeout)
        except (grpc.RpcError, TimeoutError) as e:
            print("watch failed:", describe(e) if isinstance(e, grpc.RpcError) else e, flush=True)
            return 1
    print("final state:", pb.SyncJob.State.Name(final.state), flush=True)
    return 0 if final.state == pb.SyncJob.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
