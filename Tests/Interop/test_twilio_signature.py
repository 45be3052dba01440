"""Cross-check of our X-Twilio-Signature verification against Twilio's own Python library.

For many (URL, params) cases, `twilio.request_validator.RequestValidator` computes the
signature Twilio would send and also decides whether a signature is valid for a URL as received
(e.g. with or without :443). The real `ctower-carrier-twilio` binary, driven over the carrier
plugin protocol (stdin/stdout frames) by a tiny host written here, must agree on every case.

The plugin binary: $CTOWER_TWILIO_PLUGIN, else .build-twilio/debug/ctower-carrier-twilio, else
the default `swift build` bin path.
"""
import importlib.resources
import os
import pathlib
import struct
import subprocess
import sys
import tempfile
import urllib.parse

import pytest

twilio_validator = pytest.importorskip("twilio.request_validator")

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKEN = "b2f0c9d7e4a1436f8d5e0a9c7b3e1f42"
ACCOUNT = "AC" + "0123456789abcdef" * 2


def plugin_binary():
    path = os.environ.get("CTOWER_TWILIO_PLUGIN")
    if path:
        return path
    for scratch in (".build-twilio", ".build"):
        candidate = ROOT / scratch / "debug" / "ctower-carrier-twilio"
        if candidate.exists():
            return str(candidate)
    pytest.skip("ctower-carrier-twilio is not built (swift build --scratch-path .build-twilio --product ctower-carrier-twilio)")


def carrier_messages():
    from grpc_tools import protoc
    out = tempfile.mkdtemp(prefix="ctower-carrier-pb-")
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    status = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{well_known}", f"--python_out={out}",
                          "ctower/carrier/v1/carrier.proto"])
    assert status == 0
    sys.path.insert(0, out)
    from ctower.carrier.v1 import carrier_pb2
    return carrier_pb2


class PluginHost:
    """Just enough of the host side of the protocol: Hello, then one request at a time."""

    def __init__(self, pb):
        self.pb = pb
        self.process = subprocess.Popen([plugin_binary()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
        self.next_id = 1
        hello = pb.Envelope(id=0, hello=pb.Hello(min_major_version=1, max_major_version=1, max_frame_bytes=4 << 20))
        self.write(hello)
        ack = self.read()
        assert ack.WhichOneof("payload") == "hello_ack" and ack.hello_ack.plugin_name == "twilio"

    def write(self, envelope):
        body = envelope.SerializeToString()
        self.process.stdin.write(struct.pack(">I", len(body)) + body)
        self.process.stdin.flush()

    def read(self):
        (length,) = struct.unpack(">I", self.process.stdout.read(4))
        envelope = self.pb.Envelope()
        envelope.ParseFromString(self.process.stdout.read(length))
        return envelope

    def call(self, connection_id, **operation):
        request_id = self.next_id
        self.next_id += 1
        self.write(self.pb.Envelope(id=request_id, request=self.pb.Request(connection_id=connection_id, **operation)))
        while True:
            envelope = self.read()
            if envelope.WhichOneof("payload") == "response" and envelope.id == request_id:
                return envelope.response
            if envelope.WhichOneof("payload") == "ping":
                self.write(self.pb.Envelope(id=envelope.id, pong=self.pb.Pong()))

    def close(self):
        self.process.stdin.close()
        assert self.process.wait(timeout=10) == 0


@pytest.fixture(scope="module")
def plugin():
    pb = carrier_messages()
    host = PluginHost(pb)
    response = host.call("c1", configure=pb.ConfigureRequest(
        credentials={"account_sid": ACCOUNT, "auth_token": TOKEN}, settings={"base_url": "http://127.0.0.1:9"}))
    assert response.WhichOneof("result") == "configure"
    yield host
    host.close()


def verified_by_plugin(plugin, url, params, signature, method="POST"):
    pb = plugin.pb
    body = urllib.parse.urlencode(params).encode() if method == "POST" else b""
    request = pb.ParseWebhookRequest(method=method, url=url, body=body, headers=[
        pb.Header(name="Content-Type", value="application/x-www-form-urlencoded"),
        pb.Header(name="X-Twilio-Signature", value=signature)])
    response = plugin.call("c1", parse_webhook=request)
    assert response.WhichOneof("result") == "parse_webhook", response
    return response.parse_webhook


STATUS = [("MessageSid", "SM" + "1" * 32), ("MessageStatus", "delivered"), ("SmsStatus", "delivered"),
          ("To", "+15125550100"), ("From", "+15125550199"), ("AccountSid", ACCOUNT), ("ApiVersion", "2010-04-01")]
INBOUND = [("MessageSid", "SM" + "2" * 32), ("SmsStatus", "received"), ("From", "+15125550100"),
           ("To", "+15125550199"), ("Body", "Sí, me interesa — ¿cuánto ofrece? 100% & más"), ("NumMedia", "1"),
           ("MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/x/Messages/y/Media/z"), ("FromCity", "SAN ANTONIO")]

CASES = [
    ("https://hooks.example.com/webhooks/carriers/c1", STATUS),
    ("https://hooks.example.com/webhooks/carriers/c1?ik=msg-00042&x=a%20b", STATUS),
    ("https://hooks.example.com:8443/webhooks/carriers/c1", STATUS),
    ("http://hooks.example.com/webhooks/carriers/c1", INBOUND),
    ("https://hooks.example.com/webhooks/carriers/c1", INBOUND),
    ("https://hooks.example.com/webhooks/carriers/c1", STATUS + [("Unknown", "new field"), ("Empty", "")]),
]


@pytest.mark.parametrize("url,params", CASES)
def test_signatures_twilio_computes_verify(plugin, url, params):
    validator = twilio_validator.RequestValidator(TOKEN)
    signature = validator.compute_signature(url, dict(params))
    result = verified_by_plugin(plugin, url, params, signature)
    assert result.verified
    assert len(result.events) == 1


def with_port(url):
    parts = urllib.parse.urlsplit(url)
    port = 443 if parts.scheme == "https" else 80
    return urllib.parse.urlunsplit((parts.scheme, f"{parts.hostname}:{port}", parts.path, parts.query, parts.fragment))


@pytest.mark.parametrize("url,params", CASES)
def test_agrees_with_twilio_on_port_variants_and_tampering(plugin, url, params):
    validator = twilio_validator.RequestValidator(TOKEN)
    signature = validator.compute_signature(url, dict(params))
    variants = [
        (url, params, signature),
        (with_port(url), params, signature),                       # a proxy added the default port
        (url, params, validator.compute_signature(with_port(url), dict(params))),  # Twilio signed with the port
        (url, params + [("Injected", "1")], signature),            # a parameter added in transit
        (url, [(k, v + "x") if k == "To" else (k, v) for k, v in params], signature),  # a value changed
        (url.replace("/c1", "/c2"), params, signature),            # another connection's URL
        (url, params, RequestValidatorWithToken("wrong-token").compute_signature(url, dict(params))),
    ]
    for received_url, received_params, sig in variants:
        expected = validator.validate(received_url, dict(received_params), sig)
        result = verified_by_plugin(plugin, received_url, received_params, sig)
        assert result.verified == expected, (received_url, received_params, sig)
        if not result.verified:
            assert len(result.events) == 0 and result.http_status == 403


def RequestValidatorWithToken(token):
    return twilio_validator.RequestValidator(token)
