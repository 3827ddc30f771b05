"""What the Python interop scripts share: a named check that prints its
outcome, a unary method over grpcio's generic API (as a generated stub
calls it), and the exit status of the run."""
import sys

failures = []


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else ": " + str(detail)))
    if not ok:
        failures.append(what)


def method(channel, path, request_type, response_type):
    return channel.unary_unary(path, request_serializer=request_type.SerializeToString,
                               response_deserializer=response_type.FromString)


def finish():
    if failures:
        print("%d failed" % len(failures))
        sys.exit(1)
    print("all passed")
