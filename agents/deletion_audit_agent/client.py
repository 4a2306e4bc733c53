"""The agent's HTTP client: RFC 9421 signed requests (agents/PROTOCOL.md, "Signed
requests") and the retry policy of the contract.

Retried: network errors, 5xx, 429 and ``clock_skew`` — with capped, jittered exponential
backoff. Never retried: any other refusal, which the caller sees as :class:`Refused` with
the server's ``code``. A refusal never makes the agent touch its key.
"""

from __future__ import annotations

import base64
import ipaddress
import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, algorithms
from http_message_signatures.resolvers import HTTPSignatureKeyResolver

LABEL = "da"
API = "/api/v1"


class ClientError(Exception):
    """The server could not be reached, or answered outside the protocol."""


@dataclass
class Refused(Exception):
    """A 4xx answer that retrying will not change."""

    status: int
    code: str
    message: str
    body: Mapping[str, Any]

    def __str__(self) -> str:
        return f"the server refused ({self.status} {self.code}): {self.message}"


def check_server_url(url: str) -> str:
    """``https://`` anywhere; plain ``http://`` only to a loopback address."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.rstrip("/")
    if parts.scheme == "http" and host:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return url.rstrip("/")
        raise ClientError(f"refusing plain http:// to {host}: use https:// (plain HTTP is "
                          "allowed on a loopback address only)")
    raise ClientError(f"{url!r} is not an http(s) URL")


class _KeyResolver(HTTPSignatureKeyResolver):
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        return self._key

    def resolve_public_key(self, key_id: str) -> Any:
        return self._key.public_key()


@dataclass(frozen=True)
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    attempts: int = 6
    """Tries per call; ``run`` loops forever around calls, so this bounds one call only."""

    def delay(self, attempt: int) -> float:
        # "Full jitter": a random delay below the capped exponential, so a fleet of agents
        # coming back after an outage does not retry in lockstep.
        return random.uniform(0, min(self.cap, self.base * 2 ** attempt))  # noqa: S311


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"code": "http_" + str(response.status_code), "message": response.text[:200]}
    return body if isinstance(body, dict) else {"code": "unknown", "message": str(body)}


class AgentClient:
    """Talks to one server; signs every request when it has a key and an agent id."""

    def __init__(self, server: str, *, agent_id: str | None = None,
                 key: Ed25519PrivateKey | None = None, backoff: Backoff | None = None,
                 timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.server = check_server_url(server)
        self.agent_id = agent_id
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._signer = (HTTPMessageSigner(signature_algorithm=algorithms.ED25519,
                                          key_resolver=_KeyResolver(key)) if key else None)
        self.last_contact: datetime | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self, method: str, path: str, body: bytes | None,
               content_type: str | None) -> httpx.Request:
        headers = {"content-type": content_type} if content_type else {}
        request = self._http.build_request(method, self.server + path, content=body,
                                           headers=headers)
        if self._signer is not None and self.agent_id is not None:
            nonce = base64.urlsafe_b64encode(secrets.token_bytes(18)).decode().rstrip("=")
            self._signer.sign(
                request, key_id=self.agent_id, created=datetime.now(UTC), nonce=nonce,
                label=LABEL, include_alg=True, covered_component_ids=("@method", "@target-uri"),
                body=body if body else None)
        return request

    def request(self, method: str, path: str, *, json_body: Any = None, raw: bytes | None = None,
                content_type: str | None = None, expect: tuple[int, ...] = (200, 201)
                ) -> httpx.Response:
        """One call with the contract's retries; a fresh signature (and nonce) per try."""
        import json

        body = raw
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            content_type = "application/json"
        last: str = "no attempt"
        for attempt in range(self.backoff.attempts):
            if attempt:
                self._sleep(self.backoff.delay(attempt))
            try:
                response = self._http.send(self._build(method, path, body, content_type))
            except httpx.TransportError as exc:
                last = f"cannot reach {self.server}: {exc}"
                continue
            self.last_contact = datetime.now(UTC)
            if response.status_code in expect:
                return response
            error = _error_body(response)
            code = str(error.get("code", ""))
            if response.status_code >= 500 or response.status_code == 429 or code == "clock_skew":
                last = f"{response.status_code} {code}: {error.get('message', '')}"
                continue
            raise Refused(response.status_code, code, str(error.get("message", "")), error)
        raise ClientError(f"{method} {path} failed after {self.backoff.attempts} tries: {last}")

    def download(self, path: str, dest: str) -> None:
        """Stream a (possibly large) body to ``dest``; the same retries as ``request``."""
        last = "no attempt"
        for attempt in range(self.backoff.attempts):
            if attempt:
                self._sleep(self.backoff.delay(attempt))
            try:
                response = self._http.send(self._build("GET", API + path, None, None),
                                           stream=True)
                try:
                    if response.status_code == 200:
                        with open(dest, "wb") as out:
                            for chunk in response.iter_bytes(1 << 20):
                                out.write(chunk)
                        self.last_contact = datetime.now(UTC)
                        return
                    response.read()
                finally:
                    response.close()
            except httpx.TransportError as exc:
                last = f"cannot reach {self.server}: {exc}"
                continue
            error = _error_body(response)
            if response.status_code >= 500 or response.status_code == 429 or \
                    error.get("code") == "clock_skew":
                last = f"{response.status_code} {error.get('code')}"
                continue
            raise Refused(response.status_code, str(error.get("code", "")),
                          str(error.get("message", "")), error)
        raise ClientError(f"GET {path} failed after {self.backoff.attempts} tries: {last}")

    def get_json(self, path: str) -> Any:
        return self.request("GET", API + path).json()

    def post_json(self, path: str, body: Any) -> Any:
        return self.request("POST", API + path, json_body=body).json()
