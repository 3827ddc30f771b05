"""Python grpcio calling a shop-server over gRPC (HTTP/2, prior knowledge).

Messages come from protoc --python_out over the emitted shop/api.proto; the
calls go through grpcio's generic unary API, as a generated stub would.
Then the server's /metrics, read as a Prometheus server reads it
(metrics_format.py). Exits non-zero if any check failed.
"""
import sys
import urllib.request

import grpc

import checks
import metrics_format
from checks import check
from shop import api_pb2

target = sys.argv[1]


def method(channel, name, request_type, response_type):
    return checks.method(channel, "/shop.ApiService/" + name, request_type, response_type)


with grpc.insecure_channel(target) as channel:
    add = method(channel, "add", api_pb2.AddRequest, api_pb2.AddResponse)
    check("add(40, 2) == 42", add(api_pb2.AddRequest(a=40, b=2), timeout=10).result == 42)

    place = method(channel, "place_order", api_pb2.PlaceOrderRequest, api_pb2.PlaceOrderResponse)
    order = place(api_pb2.PlaceOrderRequest(customer="7", items=[api_pb2.Item(sku="pear", qty=2, price=1.5)]),
                  timeout=10).result
    check("place_order keeps the items", order.customer == 7 and order.items[0].sku == "pear", order)

    get = method(channel, "get_order", api_pb2.GetOrderRequest, api_pb2.GetOrderResponse)
    check("get_order finds it", get(api_pb2.GetOrderRequest(id=order.id), timeout=10).result.id == order.id)

    try:
        get(api_pb2.GetOrderRequest(id="missing"), timeout=10)
        check("an unknown order is NOT_FOUND", False, "no error")
    except grpc.RpcError as e:
        check("an unknown order is NOT_FOUND", e.code() == grpc.StatusCode.NOT_FOUND, e.code())
        check("its message names the order", "missing" in e.details(), e.details())

    slow = method(channel, "slow", api_pb2.SlowRequest, api_pb2.SlowResponse)
    try:
        slow(api_pb2.SlowRequest(ms=2000), timeout=0.2)
        check("a 200 ms deadline on a 2 s call is DEADLINE_EXCEEDED", False, "no error")
    except grpc.RpcError as e:
        check("a 200 ms deadline on a 2 s call is DEADLINE_EXCEEDED",
              e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.code())

    big = api_pb2.PlaceOrderRequest(customer="8", items=[api_pb2.Item(sku="same-sku", qty=1)] * 300)
    placed = place(big, timeout=10, compression=grpc.Compression.Gzip).result
    check("a gzip request is served", len(placed.items) == 300, len(placed.items))

    nope = channel.unary_unary("/shop.ApiService/nope")
    try:
        nope(b"", timeout=10)
        check("an unknown method is UNIMPLEMENTED", False, "no error")
    except grpc.RpcError as e:
        check("an unknown method is UNIMPLEMENTED", e.code() == grpc.StatusCode.UNIMPLEMENTED, e.code())

    # grpc.health.v1.Health/Check with hand-encoded messages: HealthCheckRequest
    # {service = 1} in, HealthCheckResponse {status = 1} out; SERVING is 1.
    health = channel.unary_unary("/grpc.health.v1.Health/Check")
    check("health check answers SERVING", health(b"", timeout=10) == b"\x08\x01")

    futures = [add.future(api_pb2.AddRequest(a=i, b=1), timeout=10) for i in range(100)]
    check("100 concurrent calls on one channel", all(f.result().result == i + 1 for i, f in enumerate(futures)))

# The server's /metrics after those calls (errors, gzip, a deadline among
# them), on the same port, as a Prometheus server scrapes it.
metrics = urllib.request.urlopen("http://%s/metrics" % target, timeout=10).read().decode()
check("/metrics counts the gRPC calls",
      'dispatch_server_calls_total{function="shop.add",protocol="grpc",code="ok"}' in metrics, metrics[:2000])
wrong = metrics_format.problems(metrics)
check("/metrics is what a Prometheus scraper takes", not wrong, "; ".join(wrong[:10]))

checks.finish()
