"""Shared fixtures for the interop and protocol-abuse tests.

The tests drive our server with stock Python gRPC (grpcio) and raw HTTP/2 frames (h2), so they
check wire behaviour against implementations nobody here wrote. Stubs are generated from proto/
with grpcio-tools at session start, never committed.
"""
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _generate_stubs() -> pathlib.Path:
    """Python stubs for the interop protos. grpcio owns the top-level `grpc` package, so the files
    are copied to `grpc_testing/` (imports rewritten); the proto package, which is all the wire
    sees, stays `grpc.testing`."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="ctower-interop-stubs-"))
    src = out / "src"
    (src / "grpc_testing").mkdir(parents=True)
    for name in ("empty", "messages", "test"):
        text = (ROOT / "proto/grpc/testing" / f"{name}.proto").read_text()
        (src / "grpc_testing" / f"{name}.proto").write_text(text.replace('import "grpc/testing/', 'import "grpc_testing/'))
    import grpc_tools
    wkt = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{src}", f"-I{ROOT / 'proto'}", f"-I{wkt}",
         f"--python_out={out}", f"--grpc_python_out={out}",
         "grpc_testing/empty.proto", "grpc_testing/messages.proto", "grpc_testing/test.proto",
         "ctower/testing/v1/features.proto"],
        check=True,
    )
    return out


STUBS = _generate_stubs()
sys.path.insert(0, str(STUBS))


def server_binary() -> str:
    path = os.environ.get("CTOWER_INTEROP_SERVER")
    if path:
        return path
    bin_dir = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
    return os.path.join(bin_dir, "ctower-interop-server")


class RunningServer:
    def __init__(self):
        self.process = subprocess.Popen(
            [server_binary(), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.process.stdout.readline()
        if not line.startswith("listening on "):
            self.process.kill()
            raise RuntimeError(f"interop server did not start: {line!r} {self.process.stderr.read()}")
        self.port = int(line.split()[-1])
        self.target = f"127.0.0.1:{self.port}"

    def assert_alive(self):
        assert self.process.poll() is None, f"server exited: {self.process.stderr.read()}"

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture(scope="session")
def server():
    s = RunningServer()
    yield s
    s.assert_alive()
    s.stop()
