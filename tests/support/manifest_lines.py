"""Manifest lines and manifests for the core tests: builders and an independent root."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from typing import Any

import pytest
import rfc8785
from hypothesis import strategies as st

from deletion_audit.core import manifest as mf
from deletion_audit.core import merkle

CREATED = "2026-03-02T01:30:00Z"
CASE = "（2024）沪03民特25号"


def digest_of(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def header_obj(count: int, **changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "format": "deletion-audit-manifest", "version": 1, "case": CASE, "hash": "sha256",
        "count": count, "created_at": CREATED, "examiner_key_id": None,
    }
    obj.update(changes)
    return obj


def entry_obj(i: int, **changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"digest": digest_of(i), "kind": "image", "size": 1000 + i}
    obj.update(changes)
    return obj


def sorted_entries(n: int) -> list[dict[str, Any]]:
    return sorted((entry_obj(i) for i in range(n)), key=lambda e: e["digest"])


def jcs(obj: Any) -> bytes:
    try:
        return rfc8785.dumps(obj)
    except rfc8785.IntegerDomainError:
        # JCS has no spelling for integers past 2**53; write what a careless producer would.
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def manifest_bytes(header: dict[str, Any], entries: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(jcs(obj) + b"\n" for obj in [header, *entries])


def read(data: bytes) -> mf.ManifestSummary:
    return mf.validate_manifest(io.BytesIO(data))


def expect_error(data: bytes, line: int, message: str) -> None:
    with pytest.raises(mf.ManifestError, match=message) as caught:
        read(data)
    assert caught.value.line == line, str(caught.value)
    assert str(caught.value).startswith(f"line {line}: ")


def reference_root(entries: Sequence[dict[str, Any]]) -> bytes:
    """The commitment from DESIGN.md, independently: leaf = digest ‖ SHA-256(JCS(rest)),
    root = RFC 6962 over the leaves (merkle.MemoryTree)."""
    tree = merkle.MemoryTree()
    for entry in entries:
        rest = {k: v for k, v in entry.items() if k != "digest"}
        leaf = bytes.fromhex(entry["digest"]) + hashlib.sha256(jcs(rest)).digest()
        tree.append(merkle.leaf_hash(leaf))
    return tree.root()


# -- strategies ------------------------------------------------------------------------------

hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
source_codes = st.text(alphabet="ABCXYZabcxyz0189._:/-", min_size=1, max_size=128)
entries_st = st.builds(
    mf.ManifestEntry,
    digest=hex64,
    kind=st.sampled_from(mf.KINDS),
    size=st.integers(min_value=0, max_value=mf.MAX_SAFE_INTEGER),
    subject=st.none() | hex64,
    pdq=st.none() | hex64,
    source=st.none() | source_codes,
)

