"""A request-size limit for the agent API and signed statements (agents' and people's): a
body over the limit is refused with 413 before any of it is parsed or authenticated
(agents split large results into parts of at most 2 MiB)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_AGENT_REQUEST = 2 << 20
AGENT_PREFIXES = ("/api/v1/agents", "/api/v1/attestations")


class BodyLimit:
    def __init__(self, app: ASGIApp, *, limit: int = MAX_AGENT_REQUEST,
                 prefixes: tuple[str, ...] = AGENT_PREFIXES) -> None:
        self.app, self.limit, self.prefixes = app, limit, prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        # Bodies here are small (at most the limit), so buffering them is cheap and lets
        # the limit hold for chunked requests too.
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # a disconnect: let the app see it
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        payload = json.dumps({"code": "payload_too_large",
                              "message": f"requests here are at most {self.limit} bytes; "
                              "an agent splits a large result into parts"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
