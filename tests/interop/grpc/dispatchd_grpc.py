"""dispatchd's API over gRPC, and its /metrics, from Python grpcio.

Starts dispatchd (argv[1]) on a free port with an API key and a store in a
temporary directory, then: AdminService/List over gRPC without the key is
UNAUTHENTICATED and with it answers; reflection (v1) lists the scheduler's
services; GET /metrics shows the scheduler's and the store's metrics, in
the text format as the Prometheus parser reads it (metrics_format.py).
Messages are hand-encoded (a few protobuf bytes), so no generated code is
needed. Exits non-zero at the first wrong answer.
"""
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import grpc

import checks
import metrics_format
from checks import check

dispatchd = sys.argv[1]


with tempfile.TemporaryDirectory() as tmp:
    port_file = os.path.join(tmp, "port")
    proc = subprocess.Popen(
        [dispatchd, "--db", os.path.join(tmp, "d.db"), "--listen", "127.0.0.1:0", "--port-file", port_file,
         "--api-key", "sesame", "--no-fsync"],
        stderr=subprocess.PIPE, env=dict(os.environ, DISPATCH_LOG_LEVEL="warn"))
    try:
        for _ in range(200):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        port = open(port_file).read().strip()
        target = "127.0.0.1:" + port
        with grpc.insecure_channel(target) as channel:
            list_calls = channel.unary_unary("/dispatch.scheduler.v1.AdminService/List")
            try:
                list_calls(b"", timeout=10)
                check("List without the API key is UNAUTHENTICATED", False, "no error")
            except grpc.RpcError as e:
                check("List without the API key is UNAUTHENTICATED", e.code() == grpc.StatusCode.UNAUTHENTICATED, e.code())
            reply = list_calls(b"", timeout=10, metadata=[("authorization", "Bearer sesame")])
            check("List with the API key answers (no calls yet)", reply == b"", reply)

            # ServerReflectionRequest {list_services = 7: "*"}
            reflect = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
            answers = list(reflect(iter([b"\x3a\x01*"]), timeout=10, metadata=[("authorization", "Bearer sesame")]))
            check("reflection answers the request", len(answers) == 1, len(answers))
            check("reflection lists dispatch.sdk.v1.DispatchService",
                  b"dispatch.sdk.v1.DispatchService" in answers[0], answers[0][:200])
            check("reflection lists dispatch.scheduler.v1.AdminService",
                  b"dispatch.scheduler.v1.AdminService" in answers[0], answers[0][:200])

        metrics = urllib.request.urlopen("http://%s/metrics" % target, timeout=10).read().decode()
        for name in ["dispatch_scheduler_calls{state=\"pending\"} 0", "dispatch_scheduler_deliveries_total 0",
                     "dispatch_server_calls_total{function=\"dispatch.scheduler.v1.List\",protocol=\"grpc\",code=\"ok\"} 1",
                     "dispatch_server_rejected_total{protocol=\"grpc\",code=\"unauthenticated\"}",
                     "# TYPE dispatch_store_commit_duration_seconds histogram"]:
            check("/metrics has " + name, name in metrics, metrics[:2000])
        wrong = metrics_format.problems(metrics)
        check("/metrics is what a Prometheus scraper takes", not wrong, "; ".join(wrong[:10]))
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        check("dispatchd stopped cleanly", proc.returncode == 0, err.decode()[-2000:])

checks.finish()
