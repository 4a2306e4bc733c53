"""Real receivers for notifications: an SMTP server process (aiosmtpd, delivering into a
Maildir) and a webhook endpoint that checks Standard Webhooks signatures."""

from __future__ import annotations

import mailbox
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class SmtpServer:
    port: int
    maildir: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-u", "-l", f"127.0.0.1:{self.port}",
             "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def listening() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError("the SMTP server exited")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_until(listening, 20, "the SMTP server to listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def messages(self) -> list[Message]:
        if not (self.maildir / "new").exists():
            return []
        return list(mailbox.Maildir(self.maildir, create=False))


@contextmanager
def smtp_server(tmp_path: Path, *, start: bool = True) -> Iterator[SmtpServer]:
    server = SmtpServer(port=free_port(), maildir=tmp_path / "maildir")
    if start:
        server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class WebhookLog:
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [mid for mid, _ in self.received]


@contextmanager
def webhook_receiver(secret: str = SECRET, *, hold: threading.Event | None = None,
                     ) -> Iterator[tuple[str, WebhookLog]]:
    """A loopback endpoint that accepts only correctly signed deliveries; with ``hold``, it
    records each delivery and then answers only once ``hold`` is set (a sender killed
    meanwhile has delivered without knowing it)."""
    record = WebhookLog()
    verifier = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                payload = verifier.verify(body, headers)
            except WebhookVerificationError as exc:
                with record.lock:
                    record.refused.append(str(exc))
                self.send_response(400)
                self.end_headers()
                return
            with record.lock:
                record.received.append((headers["webhook-id"], payload))
            if hold is not None:
                hold.wait(60)
            try:
                self.send_response(204)
                self.end_headers()
            except OSError:
                pass  # the sender is gone

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", record
    finally:
        server.shutdown()
        server.server_close()
