#!/usr/bin/env python3
"""A minimal Control Tower carrier plugin in Python: proof that the protocol is language-neutral.

It handshakes, accepts Configure, answers Send with a provider id derived from the idempotency
key, answers Ping, drains on Shutdown, and exits when stdin closes. Everything else gets
UNSUPPORTED. See docs/carrier-protocol.md.

Install as `ctower-carrier-echo` (a symlink is fine) in the server's plugins directory.
Needs Python 3.9+ and grpcio-tools (for protoc and the protobuf runtime); the message classes are
generated at start-up from proto/ctower/carrier/v1/carrier.proto into a temporary directory.
"""
import hashlib
import os
import struct
import sys
import tempfile

# --- Guard stdout: frames go to a private copy of fd 1; fd 1 (and print) now go to stderr. ---
_frames_out = os.fdopen(os.dup(1), "wb", buffering=0)
os.dup2(2, 1)
sys.stdout = sys.stderr


def log(level, msg, **fields):
    """One JSON object per line on stderr; the host forwards it into its log."""
    import json
    sys.stderr.write(json.dumps({"level": level, "msg": msg, **fields}) + "\n")
    sys.stderr.flush()


def load_messages():
    """Generates carrier_pb2 from the .proto next to this repository and imports it."""
    from grpc_tools import protoc
    import importlib.resources

    here = os.path.dirname(os.path.realpath(__file__))
    proto_root = os.environ.get("CTOWER_PROTO_DIR") or os.path.join(here, "..", "..", "proto")
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    out = tempfile.mkdtemp(prefix="ctower-carrier-echo-")
    status = protoc.main([
        "protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={out}",
        "ctower/carrier/v1/carrier.proto",
    ])
    if status != 0:
        log("critical", "protoc failed", status=str(status))
        sys.exit(70)
    sys.path.insert(0, out)
    from ctower.carrier.v1 import carrier_pb2  # noqa: E402
    return carrier_pb2


pb = load_messages()
_stdin = sys.stdin.buffer
MAX_FRAME = 4 * 1024 * 1024


def read_exactly(n):
    data = b""
    while len(data) < n:
        chunk = _stdin.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_envelope():
    prefix = read_exactly(4)
    if prefix is None:
        return None
    (length,) = struct.unpack(">I", prefix)
    if length > MAX_FRAME:
        log("critical", f"frame of {length} bytes exceeds {MAX_FRAME}; first bytes {prefix.hex(' ')}")
        sys.exit(65)
    body = read_exactly(length)
    if body is None:
        return None
    envelope = pb.Envelope()
    envelope.ParseFromString(body)
    return envelope


def write_envelope(envelope):
    body = envelope.SerializeToString()
    _frames_out.write(struct.pack(">I", len(body)) + body)


def respond(request_id, **result):
    envelope = pb.Envelope(id=request_id)
    envelope.response.CopyFrom(pb.Response(**result))
    write_envelope(envelope)


def unsupported(what):
    return pb.OperationError(
        error_class=pb.ERROR_CLASS_UNSUPPORTED,
        message=f"{what} is not supported by the echo carrier",
        submission_state=pb.SUBMISSION_STATE_NOT_SUBMITTED,
    )


def main():
    hello = read_envelope()
    if hello is None:
        return
    if hello.WhichOneof("payload") != "hello":
        log("critical", "the first frame must be Hello")
        sys.exit(65)
    ours = (1, 1)
    low, high = max(hello.hello.min_major_version, ours[0]), min(hello.hello.max_major_version, ours[1])
    ack = pb.HelloAck(
        major_version=high if low <= high else 0, minor_version=0,
        min_major_version=ours[0], max_major_version=ours[1],
        plugin_name="echo", plugin_version="0.1.0",
        capabilities=[pb.CAPABILITY_SEND_SMS], max_in_flight=1, max_frame_bytes=MAX_FRAME,
    )
    write_envelope(pb.Envelope(hello_ack=ack))
    if low > high:
        log("error", "no common protocol version")
        sys.exit(69)
    print("echo: a stray print, harmlessly redirected to stderr")

    configured = set()
    while True:
        envelope = read_envelope()
        if envelope is None:
            return  # stdin closed: the host is gone or done with us
        kind = envelope.WhichOneof("payload")
        if kind == "ping":
            write_envelope(pb.Envelope(id=envelope.id, pong=pb.Pong()))
        elif kind == "request":
            request = envelope.request
            operation = request.WhichOneof("operation")
            if operation == "configure":
                configured.add(request.connection_id)
                log("info", "configured", connection=request.connection_id)
                respond(envelope.id, configure=pb.ConfigureResponse())
            elif operation == "send":
                if request.connection_id not in configured:
                    respond(envelope.id, error=pb.OperationError(
                        error_class=pb.ERROR_CLASS_AUTH, message="connection not configured",
                        submission_state=pb.SUBMISSION_STATE_NOT_SUBMITTED))
                    continue
                key = request.send.idempotency_key
                provider_id = "EC" + hashlib.sha256(key.encode()).hexdigest()[:16]
                respond(envelope.id, send=pb.SendResponse(provider_message_id=provider_id, carrier_status="sent", segments=1))
            elif operation == "shutdown":
                respond(envelope.id, shutdown=pb.ShutdownResponse())
            else:
                respond(envelope.id, error=unsupported(operation))
        # Cancel, Ack, Pong: nothing to do for a plugin that answers everything at once.


if __name__ == "__main__":
    main()
