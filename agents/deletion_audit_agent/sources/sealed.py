"""A sealed container (``custody-until``, CASES.md case 4): the one file a custodian holds
sealed, re-hashed whole before the custody expires. The agent reads its bytes to hash
them and nothing more: it never opens the archive, lists its members or deletes it —
opening the seal would break the storage-only restriction. Its scan has one object, so
the scan's root is the RFC 6962 leaf of the container's digest, which the server compares
with the digest the custodian recorded at sealing."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from deletion_audit.core.hashing import hash_file
from deletion_audit_agent.config import SealedContainerAccess
from deletion_audit_agent.sources.base import Hashed, Removal, Seen, Skipped, Throttle


class SealedContainerSource:
    method = "none"
    grade = "logical"

    def __init__(self, access: SealedContainerAccess, *, throttle: Throttle) -> None:
        self.access = access
        self.throttle = throttle

    def close(self) -> None:
        pass

    def scan(self) -> Iterator[Seen]:
        path = self.access.path
        try:
            st = os.lstat(path)
            if not os.path.isfile(path) or os.path.islink(path):
                yield Skipped(path, "not-a-file")
                return
            digest, size, _kind = hash_file(path)
        except OSError:
            yield Skipped(path, "unreadable")
            return
        self.throttle.spend(size)
        yield Hashed(path, bytes.fromhex(digest), size, st.st_mtime)

    def delete(self, items: Sequence[tuple[str, bytes]]) -> Iterator[Removal]:
        for locator, _digest in items:
            yield Removal(locator, False, "a sealed container is destroyed by its custodian, "
                                          "never by the agent")

    def exists(self, locator: str) -> bool:
        return os.path.lexists(locator)
