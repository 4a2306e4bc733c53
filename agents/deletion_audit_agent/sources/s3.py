"""An object-store bucket and prefix through the S3 API (boto3, behind the ``[s3]`` extra).

Every stored version is an object of the scope where the bucket keeps versions: an old
version still holds the data, so it is scanned, and deleted by its version id. A store
without versioning is listed with ListObjectsV2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from deletion_audit_agent.config import ObjectStoreAccess
from deletion_audit_agent.sources.base import Hashed, Removal, Seen, Skipped, Throttle, ordered_map

_CHUNK = 1 << 20
# Keys and version ids cannot contain NUL (S3 keys are UTF-8 without it in practice).
_SEP = "\0"


def _seconds(listed: Mapping[str, Any]) -> float | None:
    """An object's (or version's) LastModified from its listing, in POSIX seconds."""
    modified = listed.get("LastModified")
    return modified.timestamp() if isinstance(modified, datetime) else None


class ObjectStoreError(Exception):
    pass


class S3Source:
    method = "object-delete"
    grade = "logical"

    def __init__(self, access: ObjectStoreAccess, *, jobs: int, throttle: Throttle) -> None:
        try:
            import boto3  # type: ignore[import-untyped]  # no stubs in the [s3] extra
            from botocore.config import Config  # type: ignore[import-untyped]
        except ImportError:
            raise ObjectStoreError("object-store scopes need the [s3] extra: pip install "
                                   "'deletion-audit[s3]'") from None
        self.access = access
        self.jobs = jobs
        self.throttle = throttle
        self.client: Any = boto3.client(
            "s3", endpoint_url=access.endpoint, aws_access_key_id=access.access_key_id,
            aws_secret_access_key=access.secret_access_key,
            region_name=access.region or "us-east-1",
            config=Config(retries={"max_attempts": 5, "mode": "standard"},
                          s3={"addressing_style": "path"}))

    def close(self) -> None:
        self.client.close()

    def _versioned(self) -> bool:
        status = self.client.get_bucket_versioning(Bucket=self.access.bucket).get("Status")
        return status in ("Enabled", "Suspended")

    def _list(self) -> Iterator[tuple[str, str | None, float | None]]:
        bucket, prefix = self.access.bucket, self.access.prefix
        if self._versioned():
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=prefix)
            for page in pages:
                for version in page.get("Versions", []):
                    yield version["Key"], version["VersionId"], _seconds(version)
            return
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"], None, _seconds(obj)

    def _digest(self, key: str, version: str | None) -> tuple[bytes, int]:
        extra = {"VersionId": version} if version else {}
        body = self.client.get_object(Bucket=self.access.bucket, Key=key, **extra)["Body"]
        hasher = hashlib.sha256()
        size = 0
        try:
            for chunk in body.iter_chunks(_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
                self.throttle.spend(len(chunk))
        finally:
            body.close()
        return hasher.digest(), size

    def _hash(self, item: tuple[str, str | None, float | None]) -> Seen:
        key, version, modified = item
        locator = key if version is None else f"{key}{_SEP}{version}"
        try:
            digest, size = self._digest(key, version)
        except Exception:
            return Skipped(locator, "unreadable")
        return Hashed(locator, digest, size, modified)

    def scan(self) -> Iterator[Seen]:
        yield from ordered_map(self._hash, self._list(), jobs=self.jobs)

    def delete(self, items: Sequence[tuple[str, bytes]]) -> Iterator[Removal]:
        for locator, digest in items:
            key, _, version = locator.partition(_SEP)
            try:
                current, _ = self._digest(key, version or None)
                if current != digest:
                    yield Removal(locator, False, "content changed since the scan")
                    continue
                extra = {"VersionId": version} if version else {}
                self.client.delete_object(Bucket=self.access.bucket, Key=key, **extra)
            except Exception as exc:
                yield Removal(locator, False, str(exc))
                continue
            yield Removal(locator, True)

    def exists(self, locator: str) -> bool:
        key, _, version = locator.partition(_SEP)
        extra = {"VersionId": version} if version else {}
        try:
            self.client.head_object(Bucket=self.access.bucket, Key=key, **extra)
        except Exception as exc:
            status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get(
                "HTTPStatusCode")
            if status in (404, 405):
                # 404: no such key or version; 405: a delete marker stands there.
                return False
            raise
        return True
