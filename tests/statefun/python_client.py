"""A StateFun runtime's side of the request-reply protocol, from its
published description and not through our encoder: protobuf classes that
protoc generated from runtime/proto/io/statefun/sdk/reqreply/request_reply.proto
(Debian's python3-protobuf), plain HTTP POSTs with
Content-Type: application/octet-stream. Drives sdk_endpoint and checks the
FromFunction replies: the handshake, a batch in order with state carried,
replies to the caller, delayed messages and their cancellation, egress,
deletion, and the refusals.
Usage: python_client.py GENERATED_DIR PORT
"""
import struct
import sys
import urllib.error
import urllib.request

sys.path.insert(0, sys.argv[1])
from io_statefun_gen.request_reply_pb2 import ToFunction, FromFunction  # noqa: E402

URL = "http://127.0.0.1:%s/statefun" % sys.argv[2]
INT = "io.statefun.types/int"
STRING = "io.statefun.types/string"


def string_value(s):
    b = s.encode("utf-8")
    return b"\x0a" + bytes([len(b)]) + b  # StringWrapper{value = 1}, short strings


def read_string(b):
    assert b[0] == 0x0A, b
    return b[2:2 + b[1]].decode("utf-8")


def int_value(n):
    return b"\x0d" + struct.pack("<i", n)  # IntWrapper{sfixed32 value = 1}


def read_int(b):
    return struct.unpack("<i", b[1:5])[0] if b else 0


def post(req):
    body = req.SerializeToString() if not isinstance(req, bytes) else req
    r = urllib.request.Request(URL, data=body, method="POST",
                               headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            assert resp.status == 200, resp.status
            assert resp.headers["Content-Type"] == "application/octet-stream", resp.headers["Content-Type"]
            out = FromFunction()
            out.ParseFromString(resp.read())
            return 200, out
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def batch(names, state=None, caller=None, target_type="greet"):
    req = ToFunction()
    inv = req.invocation
    inv.target.namespace = "greeter"
    inv.target.type = target_type
    inv.target.id = "alice"
    for name, value in (state or {}).items():
        s = inv.state.add()
        s.state_name = name
        if value is not None:
            s.state_value.typename = value[0]
            s.state_value.has_value = True
            s.state_value.value = value[1]
    for i, n in enumerate(names):
        call = inv.invocations.add()
        if caller and i == 0:
            call.caller.namespace, call.caller.type, call.caller.id = caller
        call.argument.typename = STRING
        call.argument.has_value = True
        call.argument.value = string_value(n)
    return req


checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    checks += 1


# 1. The handshake: no state sent, so every declared value is missing.
code, res = post(batch(["alice"]))
check(code == 200 and res.HasField("incomplete_invocation_context"), "handshake answer")
missing = {m.state_name: m for m in res.incomplete_invocation_context.missing_values}
check(set(missing) == {"seen", "last"}, "missing values %s" % set(missing))
check(missing["seen"].type_typename == INT, "seen's typename")
check(missing["seen"].expiration_spec.mode == FromFunction.ExpirationSpec.NONE, "seen never expires")
check(missing["last"].type_typename == STRING, "last's typename")
check(missing["last"].expiration_spec.mode == FromFunction.ExpirationSpec.AFTER_WRITE, "last expires after write")
check(missing["last"].expiration_spec.expire_after_millis == 60000, "last's ttl")

# 2. The batch, in order, with state carried from one invocation to the next.
code, res = post(batch(["alice", "bob", "later"], state={"seen": (INT, int_value(4)), "last": None},
                       caller=("shop", "cart", "c1")))
check(code == 200 and res.HasField("invocation_result"), "invocation result")
r = res.invocation_result
muts = {m.state_name: m for m in r.state_mutations}
check(muts["seen"].mutation_type == FromFunction.PersistedValueMutation.MODIFY, "seen modified")
check(muts["seen"].state_value.typename == INT and read_int(muts["seen"].state_value.value) == 7, "seen = 4 + 3")
check(read_string(muts["last"].state_value.value) == "later", "last = the last name")
check(len(r.outgoing_messages) == 1, "one reply (only the first invocation had a caller)")
reply = r.outgoing_messages[0]
check((reply.target.namespace, reply.target.type, reply.target.id) == ("shop", "cart", "c1"), "reply to the caller")
check(read_string(reply.argument.value) == "hello alice", "reply text")
check([read_string(e.argument.value) for e in r.outgoing_egresses] == ["alice", "bob", "later"], "egress in order")
check(all((e.egress_namespace, e.egress_type) == ("greeter", "log") for e in r.outgoing_egresses), "egress name")
check(len(r.delayed_invocations) == 1, "one delayed message")
d = r.delayed_invocations[0]
check(d.delay_in_ms == 100 and d.cancellation_token == "tok" and not d.is_cancellation_request, "delayed message")
check(d.target.id == "alice" and read_string(d.argument.value) == "again", "delayed to itself")

# 3. A cancellation carries only its token; a deletion is a DELETE.
code, res = post(batch(["cancel", "forget"], state={"seen": (INT, int_value(1)), "last": (STRING, string_value("x"))}))
r = res.invocation_result
check(len(r.delayed_invocations) == 1 and r.delayed_invocations[0].is_cancellation_request, "cancellation")
check(r.delayed_invocations[0].cancellation_token == "tok" and not r.delayed_invocations[0].HasField("target"),
      "a cancellation carries only the token")
muts = {m.state_name: m for m in r.state_mutations}
check(muts["last"].mutation_type == FromFunction.PersistedValueMutation.DELETE, "last deleted")
check(read_int(muts["seen"].state_value.value) == 3, "seen = 1 + 2")

# 4. Nothing changed, nothing sent back: only values that changed come back.
code, res = post(batch([], state={"seen": (INT, int_value(1)), "last": None}))
check(code == 200 and len(res.invocation_result.state_mutations) == 0, "no mutations without invocations")

# 5. Refusals: not a ToFunction, an unknown type, a value of another type, a throwing function.
code, _ = post(b"\xff\xff\xff")
check(code == 400, "garbage body -> 400, got %s" % code)
code, body = post(batch(["x"], target_type="nobody"))
check(code == 404 and "greeter/nobody" in body, "unknown function type -> 404 naming it: %s %s" % (code, body))
code, body = post(batch(["x"], state={"seen": ("io.statefun.types/long", b"\x09" + b"\x00" * 8), "last": None}))
check(code >= 400 and "io.statefun.types/long" in body, "a value of another type is refused: %s %s" % (code, body))
code, body = post(batch(["boom"], state={"seen": None, "last": None}))
check(code >= 500, "a throwing function fails the batch: %s" % code)

print("%d checks passed" % checks)
