"""A sealed container: hashed whole, never opened or deleted; its scan's root is the leaf
of its digest, which the server compares with the digest recorded at sealing."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from deletion_audit.core.merkle import leaf_hash
from deletion_audit_agent.config import ConfigError, SealedContainerAccess, resolve_access
from deletion_audit_agent.scanning import tally
from deletion_audit_agent.sources import Hashed, Skipped, Throttle, open_source


def _tar(path: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"face 1"
        info = tarfile.TarInfo("faces/1.jpg")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_the_container_is_hashed_whole_and_its_root_is_the_leaf(tmp_path: Path) -> None:
    container = tmp_path / "tape-7.tar"
    data = _tar(container)
    access = resolve_access("9", "sealed_container", {"path": str(container)}, None)
    assert access == SealedContainerAccess(path=str(container))
    source = open_source(access, jobs=1, throttle=Throttle(None))
    (seen,) = list(source.scan())
    assert isinstance(seen, Hashed)
    assert seen.digest == hashlib.sha256(data).digest()
    out = tally(open_source(access, jobs=1, throttle=Throttle(None)).scan(),
                lambda _d: False, b"k" * 32)
    assert (out.objects, out.hashed) == (1, 1)
    assert out.root == leaf_hash(hashlib.sha256(data).digest()).hex()


def test_never_deleted_and_a_link_or_a_missing_file_is_skipped(tmp_path: Path) -> None:
    container = tmp_path / "tape-7.tar"
    data = _tar(container)
    source = open_source(SealedContainerAccess(str(container)), jobs=1, throttle=Throttle(None))
    (removal,) = list(source.delete([(str(container), hashlib.sha256(data).digest())]))
    assert not removal.ok
    assert "never by the agent" in (removal.error or "")
    assert container.read_bytes() == data
    (tmp_path / "link.tar").symlink_to(container)
    for path, reason in [(tmp_path / "link.tar", "not-a-file"),
                         (tmp_path / "gone.tar", "unreadable")]:
        (seen,) = list(open_source(SealedContainerAccess(str(path)), jobs=1,
                                   throttle=Throttle(None)).scan())
        assert seen == Skipped(str(path), reason)


def test_a_relative_path_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be absolute"):
        resolve_access("9", "sealed_container", {"path": "tape.tar"}, None)
