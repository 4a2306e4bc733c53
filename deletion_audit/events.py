"""What a domain write returns: the row it wrote and the leaf hash of its logged event.

DESIGN (Contracts, log identity): a write answers with the leaf hash at once; the index and
the inclusion proof follow once integrated (``GET /api/v1/log/leaf/{hash}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Logged(Generic[T]):
    row: T
    leaf_hash: bytes
