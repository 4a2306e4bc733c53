"""Where items may live: a directory tree, a SQL table, an object-store prefix; and a
sealed container a custodian holds."""

from __future__ import annotations

from deletion_audit_agent.config import (
    Access,
    DirectoryAccess,
    ObjectStoreAccess,
    SealedContainerAccess,
    SqlAccess,
)
from deletion_audit_agent.sources.base import Hashed, Removal, Seen, Skipped, Source, Throttle
from deletion_audit_agent.state import State

__all__ = ["Hashed", "Removal", "Seen", "Skipped", "Source", "Throttle", "open_source"]


def open_source(access: Access, *, jobs: int, throttle: Throttle, cache: State | None = None,
                use_cache: bool = False, overwrite: bool = False) -> Source:
    # Each backend is imported on use: SQL and S3 need their install extras.
    if isinstance(access, DirectoryAccess):
        from deletion_audit_agent.sources.directory import DirectorySource

        return DirectorySource(access, jobs=jobs, throttle=throttle, cache=cache,
                               use_cache=use_cache, overwrite=overwrite)
    if isinstance(access, SqlAccess):
        from deletion_audit_agent.sources.sql import SqlSource

        return SqlSource(access, throttle=throttle)
    if isinstance(access, ObjectStoreAccess):
        from deletion_audit_agent.sources.s3 import S3Source

        return S3Source(access, jobs=jobs, throttle=throttle)
    if isinstance(access, SealedContainerAccess):
        from deletion_audit_agent.sources.sealed import SealedContainerSource

        return SealedContainerSource(access, throttle=throttle)
    raise TypeError(f"unknown access {access!r}")
