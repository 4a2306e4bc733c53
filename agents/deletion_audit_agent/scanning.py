"""The scanning core, independent of where objects live: count and root what was seen,
probe the manifest filter, and check the server's confirmations.

A filter hit only means "maybe". The server confirms each candidate with its manifest leaf
and an inclusion proof; the agent believes a hit only if the leaf starts with the digest it
asked about and the proof leads to the manifest's root (RFC 9162 §2.1.3.2). One bad proof
fails the whole confirmation: a server that lies about one item is not trusted for others.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deletion_audit.core.errors import CoreError
from deletion_audit.core.merkle import Frontier, leaf_hash, verify_inclusion
from deletion_audit.core.predicates import MAX_DIGESTS_PER_STATEMENT
from deletion_audit_agent.ages import AgeTally
from deletion_audit_agent.sources.base import Hashed, Seen


class ProofCheckError(Exception):
    """The server's confirmation does not prove what it claims."""


@dataclass
class Tally:
    objects: int = 0
    hashed: int = 0
    hashed_bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_path_hashes: list[str] = field(default_factory=list)
    frontier: Frontier = field(default_factory=Frontier)
    candidates: dict[bytes, list[str]] = field(default_factory=dict)
    """Filter hits: digest → where on this host (locators stay local)."""
    ages: AgeTally | None = None
    """Per-kind ages, for a scope under a retention rule."""

    @property
    def root(self) -> str:
        return self.frontier.root().hex()


def path_hash(key: bytes, locator: str) -> str:
    """A keyed hash of a skipped object's locator: the server can count and later match
    skips without learning names, which often carry names or ID numbers."""
    return hmac.new(key, locator.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def tally(seen: Iterable[Seen], probe: Callable[[bytes], bool], path_key: bytes,
          progress: Callable[[int], None] | None = None,
          on_skip: Callable[[str, str, str], None] | None = None,
          ages: AgeTally | None = None) -> Tally:
    """Consume a source's stream: the scan root is RFC 6962 over the content digests in
    scan order, built streaming (O(log n) memory). ``on_skip(path_hash, reason, locator)``
    lets the caller keep the paths in the host's own log; ``ages`` collects the age summary
    of a scope under a retention rule."""
    out = Tally(ages=ages)
    for item in seen:
        out.objects += 1
        if isinstance(item, Hashed):
            out.hashed += 1
            out.hashed_bytes += item.size
            out.frontier.append(leaf_hash(item.digest))
            if ages is not None:
                ages.add(item.locator, item.modified_at)
            if probe(item.digest):
                out.candidates.setdefault(item.digest, []).append(item.locator)
        else:
            out.skipped[item.reason] += 1
            hashed = path_hash(path_key, item.locator)
            out.skipped_path_hashes.append(hashed)
            if on_skip is not None:
                on_skip(hashed, item.reason, item.locator)
        if progress is not None:
            progress(1)
    return out


@dataclass(frozen=True)
class ManifestRef:
    id: int
    root: bytes
    count: int

    @classmethod
    def from_scope(cls, body: Mapping[str, Any]) -> ManifestRef:
        return cls(id=int(body["id"]), root=bytes.fromhex(body["root"]),
                   count=int(body["count"]))


def check_confirmation(answer: Mapping[str, Any], manifest: ManifestRef,
                       asked: set[bytes]) -> set[bytes]:
    """The digests ``answer`` proves present; ProofCheckError if any part is wrong."""
    try:
        if int(answer["manifest_id"]) != manifest.id:
            raise ProofCheckError(f"answer is for manifest {answer['manifest_id']}, not "
                                  f"{manifest.id}")
        size, root = int(answer["size"]), bytes.fromhex(answer["root"])
        if root != manifest.root or size != manifest.count:
            raise ProofCheckError("answer's manifest root or size is not the manifest's")
        present = set()
        for hit in answer["hits"]:
            digest, leaf = bytes.fromhex(hit["digest"]), bytes.fromhex(hit["leaf"])
            if digest not in asked:
                raise ProofCheckError(f"hit {hit['digest']} was not asked about")
            if leaf[:32] != digest or len(leaf) != 64:
                raise ProofCheckError(f"leaf of hit {hit['digest']} does not start with it")
            proof = [bytes.fromhex(p) for p in hit["proof"]]
            verify_inclusion(leaf_hash(leaf), int(hit["index"]), size, proof, manifest.root)
            present.add(digest)
    except ProofCheckError:
        raise
    except CoreError as exc:
        raise ProofCheckError(f"an inclusion proof does not verify: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ProofCheckError(f"malformed confirmation: {exc!r}") from None
    return present


def confirm(candidates: Iterable[bytes], manifest: ManifestRef,
            ask: Callable[[list[str]], Mapping[str, Any]]) -> set[bytes]:
    """Confirm candidates in batches the server accepts; the verified hits."""
    pending = sorted(set(candidates))
    present: set[bytes] = set()
    for start in range(0, len(pending), MAX_DIGESTS_PER_STATEMENT):
        batch = pending[start:start + MAX_DIGESTS_PER_STATEMENT]
        answer = ask([d.hex() for d in batch])
        present |= check_confirmation(answer, manifest, set(batch))
    return present
