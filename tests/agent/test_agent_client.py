"""The signed client: RFC 9421 signatures the server's verifier accepts, the retry policy,
and the refusal of plain HTTP off loopback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from http_message_signatures import (
    ContentDigest,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)

from deletion_audit.core import keys
from deletion_audit_agent.client import (
    AgentClient,
    Backoff,
    ClientError,
    Refused,
    check_server_url,
)

KEY = keys.generate()
FAST = Backoff(base=0, attempts=4)


class _Message:
    def __init__(self, request: httpx.Request) -> None:
        self.method = request.method
        self.url = str(request.url)
        self.headers = request.headers


def verify(request: httpx.Request) -> dict[str, Any]:
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={"agt_1": KEY.public_key()},
                                        private_keys={}))
    body = request.content
    required = ("@method", "@target-uri", "content-digest") if body else \
        ("@method", "@target-uri")
    (result,) = verifier.verify(_Message(request), max_age=None, require_components=required)
    if body:
        ContentDigest.verify_components(result.covered_components, body)
    return {"label": result.label, **dict(result.parameters)}


def client(handler: Any) -> AgentClient:
    return AgentClient("http://127.0.0.1:8000", agent_id="agt_1", key=KEY, backoff=FAST,
                       transport=httpx.MockTransport(handler), sleep=lambda _s: None)


class TestServerUrl:
    @pytest.mark.parametrize("url", ["https://audit.example", "http://127.0.0.1:8000",
                                     "http://localhost:8000", "http://[::1]:8000"])
    def test_accepted(self, url: str) -> None:
        assert check_server_url(url + "/") == url

    @pytest.mark.parametrize("url", ["http://audit.example", "http://10.0.0.5:8000"])
    def test_plain_http_off_loopback_is_refused(self, url: str) -> None:
        with pytest.raises(ClientError, match="refusing plain http"):
            check_server_url(url)

    def test_other_schemes_are_refused(self) -> None:
        with pytest.raises(ClientError, match="not an http"):
            check_server_url("ftp://audit.example")


class TestSigning:
    def test_requests_carry_a_verifiable_signature(self) -> None:
        seen: list[dict[str, Any]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(verify(request))
            return httpx.Response(200, json={"ok": True})

        with client(handler) as c:
            c.post_json("/agents/heartbeat", {"outbox": 0})
            c.get_json("/agents/scopes")
        assert [s["label"] for s in seen] == ["da", "da"]
        assert all(s["keyid"] == "agt_1" and s["alg"] == "ed25519" for s in seen)
        assert len({s["nonce"] for s in seen}) == 2
        assert all(len(s["nonce"]) >= 16 for s in seen)


def scripted(*answers: httpx.Response | Exception) -> tuple[Any, list[int]]:
    calls: list[int] = []
    nonces: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        nonces.add(verify(request)["nonce"])
        calls.append(len(nonces))
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, calls


def error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, content=json.dumps({"code": code, "message": code}))


class TestRetries:
    @pytest.mark.parametrize("first", [
        error(503, "unavailable"), error(429, "slow_down"), error(401, "clock_skew"),
        httpx.ConnectError("refused"),
    ])
    def test_transient_failures_are_retried_with_a_fresh_signature(self, first: Any) -> None:
        handler, calls = scripted(first, httpx.Response(201, json={"statement_id": "x"}))
        with client(handler) as c:
            assert c.post_json("/attestations", {"a": 1}) == {"statement_id": "x"}
        assert calls == [1, 2]  # two tries, two distinct nonces

    @pytest.mark.parametrize(("status", "code"), [(422, "stale_scope"), (409, "fork"),
                                                  (403, "revoked"), (401, "unknown_agent")])
    def test_refusals_are_never_retried(self, status: int, code: str) -> None:
        handler, calls = scripted(error(status, code))
        with client(handler) as c, pytest.raises(Refused) as refused:
            c.post_json("/attestations", {"a": 1})
        assert (refused.value.status, refused.value.code) == (status, code)
        assert calls == [1]

    def test_gives_up_after_the_configured_tries(self) -> None:
        handler, calls = scripted(error(502, "bad_gateway"))
        with client(handler) as c, pytest.raises(ClientError, match="after 4 tries"):
            c.get_json("/agents/scopes")
        assert len(calls) == 4

    def test_backoff_is_capped_and_jittered(self) -> None:
        backoff = Backoff(base=1, cap=5)
        delays = [backoff.delay(10) for _ in range(50)]
        assert max(delays) <= 5
        assert len(set(delays)) > 1
