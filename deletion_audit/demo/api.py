"""The demo's people talking to the server over HTTP with their bearer tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from deletion_audit.demo.processes import DemoError, wait_for

VERDICT_SECONDS = 180.0


@dataclass(frozen=True)
class Person:
    name: str
    organisation: str
    token: str
    key: Path
    """The private key file (``.pub`` beside it)."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=120)

    def close(self) -> None:
        self.http.close()

    def call(self, person: Person | None, method: str, path: str, *, expect: int = 200,
             **kwargs: Any) -> Any:
        """One request as ``person``; DemoError names the refusal."""
        headers = person.headers if person else {}
        try:
            response = self.http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise DemoError(f"{method} {path}: cannot reach the server: {exc}") from None
        if response.status_code != expect:
            try:
                message = response.json().get("message", response.text[:300])
            except ValueError:
                message = response.text[:300]
            raise DemoError(f"{method} {path} as {person.name if person else 'anyone'}: "
                            f"{response.status_code} {message}")
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def leaf_index(self, leaf_hash: str) -> int | None:
        """The leaf's index once the log integrated it (404 until then)."""
        response = self.http.get(f"/api/v1/log/leaf/{leaf_hash}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DemoError(f"GET /api/v1/log/leaf/{leaf_hash}: {response.status_code}")
        return int(response.json()["index"])

    def verdict_covering(self, person: Person, case_id: int,
                         receipt: dict[str, Any]) -> dict[str, Any]:
        """The case's verdict once it accounts for the statement of ``receipt``: the leaf is
        in the log, no change waits for recomputation (``stale`` false), and the version's
        ``as_of`` covers the leaf — by log size, or by time when the version was computed
        between the statement's storage and the leaf's integration."""
        leaf = str(receipt["leaf_hash"])
        received = datetime.fromisoformat(str(receipt["received_at"]))
        index = wait_for(lambda: self.leaf_index(leaf), timeout=60,
                         what=f"leaf {leaf[:16]}… to be integrated into the log")

        def ready() -> dict[str, Any] | None:
            verdict: dict[str, Any] = self.call(person, "GET",
                                                f"/api/v1/cases/{case_id}/verdict")
            as_of = verdict["as_of"]
            covers = (int(as_of["log_size"]) > index
                      or datetime.fromisoformat(as_of["time"]) >= received)
            return verdict if covers and not verdict["stale"] else None

        return wait_for(ready, timeout=VERDICT_SECONDS,
                        what=f"a verdict covering log leaf {index}")
