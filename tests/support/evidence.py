"""Manifests for tests: generated entries, written and signed as an examiner would."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deletion_audit.core import dsse, keys
from deletion_audit.core import manifest as mf
from deletion_audit.core.statements import statement_bytes
from deletion_audit.identity.keys import register_user_key
from deletion_audit.models import User
from tests.support.world import World

KINDS = ("image", "image", "image", "video", "record")


def entries(n: int, *, seed: int = 1, people: int = 5) -> list[mf.ManifestEntry]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        digest = hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()
        subject = hashlib.sha256(f"person {rng.randrange(people)}".encode()).hexdigest()
        out.append(mf.ManifestEntry(digest=digest, kind=KINDS[i % len(KINDS)],
                                    size=rng.randrange(1, 1 << 22), subject=subject,
                                    source="SH-QP/NAS1" if i % 2 else None))
    return out


@dataclass
class SignedManifest:
    path: Path
    envelope: dict[str, Any]
    summary: mf.ManifestSummary
    entries: list[mf.ManifestEntry]


def write_signed(
    directory: Path, key: Ed25519PrivateKey, *, case: str, items: list[mf.ManifestEntry],
    created_at: str = "2026-03-02T01:30:00Z", name: str = "manifest.jsonl",
) -> SignedManifest:
    path = directory / name
    header = mf.ManifestHeader(case=case, count=0, created_at=created_at,
                               examiner_key_id=keys.key_id(key.public_key()))
    written = mf.write_manifest(path, header, items)
    statement = mf.statement_for(written.summary, path.name)
    envelope = dsse.sign(statement_bytes(statement), dsse.IN_TOTO_PAYLOAD_TYPE, key)
    return SignedManifest(path=path, envelope=json.loads(envelope.to_json()),
                          summary=written.summary, entries=sorted(items, key=lambda e: e.digest))


def examiner_key(world: World) -> Ed25519PrivateKey:
    """A key registered to the world's examiner (who may sign the case's manifests)."""
    key = keys.generate()
    env = world.env
    with env.db.write() as session:
        user = session.get_one(User, world.examiner.user_id)
        register_user_key(session, user=user, public_key=keys.raw_public(key.public_key()),
                          now=env.clock.now())
    return key
