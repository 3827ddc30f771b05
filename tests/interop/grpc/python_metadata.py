"""Python grpcio calling grpc-interop-server (interop_api.h) over gRPC.

What a gRPC user of another language sees of a function's headers:
request metadata the function reads (repeated keys, binary ones), the
metadata it adds coming back as initial metadata on success and as
trailing metadata when the call fails (a trailers-only answer), the W3C
trace context reaching the function, and the error details in
grpc-status-details-bin. Messages come from protoc --python_out over the
emitted interop_api.proto. Exits non-zero if any check failed.
"""
import sys

import grpc
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

import checks
import interop_api_pb2 as api
from checks import check

target = sys.argv[1]


def method(channel, name, request_type, response_type):
    return checks.method(channel, "/interop.v1.InteropApiService/" + name, request_type, response_type)


def values(metadata, key):
    return [v for k, v in (metadata or ()) if k == key]


def rpc_status_class():
    """google.rpc.Status, declared here: Debian's python3-protobuf has the
    well-known types (Any) but not the googleapis ones."""
    file = descriptor_pb2.FileDescriptorProto(name="interop_google_rpc_status.proto",
                                              package="google.rpc", syntax="proto3",
                                              dependency=["google/protobuf/any.proto"])
    status = file.message_type.add(name="Status")
    status.field.add(name="code", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
                     label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    status.field.add(name="message", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                     label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    status.field.add(name="details", number=3, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                     label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
                     type_name=".google.protobuf.Any")
    pool = descriptor_pool.DescriptorPool()
    file_any = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(file_any)
    pool.Add(file_any)
    pool.Add(file)
    return message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("google.rpc.Status"))


with grpc.insecure_channel(target) as channel:
    metadata = method(channel, "metadata", api.MetadataRequest, api.MetadataResponse)

    # Repeated text metadata and a binary one: grpcio base64-encodes -bin
    # values on the wire and decodes them on the way back.
    blob = bytes([0, 1, 2, 255, 10, 13])
    answer, call = metadata.with_call(
        api.MetadataRequest(name="x-tenant", fail_code=0), timeout=10,
        metadata=[("x-tenant", "acme"), ("x-tenant", "umbrella"), ("x-blob-bin", blob)])
    check("the function reads repeated request metadata", answer.result == "acme,umbrella", answer.result)
    initial = call.initial_metadata()
    check("its metadata comes back as initial metadata",
          values(initial, "x-seen") == ["acme,umbrella"], initial)
    check("binary metadata goes and comes back as bytes",
          values(initial, "x-blob-bin") == [blob[::-1]], initial)

    # A failing call answers trailers-only: the function's metadata is in
    # the trailing metadata, next to the status.
    try:
        metadata(api.MetadataRequest(name="x-tenant", fail_code=5), timeout=10,
                 metadata=[("x-tenant", "acme")])
        check("a failing call fails", False, "no error")
    except grpc.RpcError as e:
        check("a failing call is NOT_FOUND", e.code() == grpc.StatusCode.NOT_FOUND, e.code())
        everything = list(e.initial_metadata() or ()) + list(e.trailing_metadata() or ())
        check("a failing call carries the function's metadata",
              values(everything, "x-seen") == ["acme"], everything)

    # The W3C trace context a caller sends is the function's.
    trace_id = method(channel, "trace_id", api.TraceIdRequest, api.TraceIdResponse)
    tid = "4bf92f3577b34da6a3ce929d0e0e4736"
    got = trace_id(api.TraceIdRequest(), timeout=10,
                   metadata=[("traceparent", "00-%s-00f067aa0ba902b7-01" % tid)]).result
    check("traceparent metadata reaches the function", got == tid, got)

    # An error with details: grpc-status-details-bin is a google.rpc.Status
    # with the same code and message and the detail the function gave.
    fail = method(channel, "fail", api.FailRequest, api.FailResponse)
    try:
        fail(api.FailRequest(code=9, message="no stock for pear"), timeout=10)
        check("fail fails", False, "no error")
    except grpc.RpcError as e:
        check("fail is FAILED_PRECONDITION", e.code() == grpc.StatusCode.FAILED_PRECONDITION, e.code())
        check("its message is the function's", e.details() == "no stock for pear", e.details())
        details = values(e.trailing_metadata(), "grpc-status-details-bin")
        check("grpc-status-details-bin is there once", len(details) == 1, e.trailing_metadata())
        if len(details) == 1:
            status = rpc_status_class().FromString(details[0])
            check("the details' Status repeats code and message",
                  status.code == 9 and status.message == "no stock for pear", status)
            check("the details carry the function's detail",
                  len(status.details) == 1
                  and status.details[0].type_url == "type.googleapis.com/google.rpc.RetryInfo"
                  and status.details[0].value == b"\x0a\x02\x08\x05", status.details)

checks.finish()
