"""The agent build's digest, reported in every statement (DESIGN: who attests)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path


@functools.cache
def build_digest() -> str:
    """SHA-256 over the agent package's Python files: each relative path and the SHA-256
    of its content, in sorted path order. Compiled caches are not part of the build."""
    root = Path(__file__).resolve().parent
    outer = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        outer.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return outer.hexdigest()
