"""Response bodies of the log API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class EntryRead(BaseModel):
    index: int
    leaf_hash: str
    data: str
    leaf: dict[str, Any]


class InclusionProofRead(BaseModel):
    index: int
    size: int
    hashes: list[str]


class LeafProofRead(InclusionProofRead):
    leaf_hash: str
    checkpoint: str


class ConsistencyProofRead(BaseModel):
    first: int
    second: int
    hashes: list[str]
