"""HTTP shapes of manifests, uploads and matching material."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from deletion_audit.evidence.proofs import MAX_CONFIRM


class ManifestRead(BaseModel):
    id: int
    case_id: int
    state: str
    case_number: str
    count: int
    root: str = Field(description="RFC 6962 root over the entry leaves, hex")
    file_sha256: str
    header: dict[str, Any]
    examiner_key_id: str
    kinds: dict[str, int] = Field(description="item counts by kind")
    people: int = Field(description="distinct subject pseudonyms")
    supersedes: int | None
    superseded_reason: str | None
    leaf_hash: str | None = Field(description="the registration's log leaf, hex")
    activated_at: datetime | None


class ManifestComplete(BaseModel):
    envelope: dict[str, Any] = Field(description="the examiner's DSSE envelope, as signed")
    supersede_reason: str | None = Field(default=None, max_length=2000)


class UploadRead(BaseModel):
    id: str
    received: int = Field(description="bytes received so far: the offset of the next chunk")


class ConfirmRequest(BaseModel):
    digests: list[str] = Field(
        max_length=MAX_CONFIRM, description="candidate digests (hex) the filter matched"
    )


class HitRead(BaseModel):
    digest: str
    index: int
    leaf: str = Field(description="digest ‖ SHA-256(JCS(rest of the entry)), hex")
    proof: list[str]


class ConfirmRead(BaseModel):
    manifest_id: int
    size: int
    root: str
    hits: list[HitRead]
