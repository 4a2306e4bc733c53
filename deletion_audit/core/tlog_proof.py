"""C2SP tlog-proof@v1 (https://c2sp.org/tlog-proof): an offline proof that an entry is in
the log — the entry's index, its RFC 6962 inclusion proof, and the signed checkpoint the
proof leads to. Bundles carry one per logged event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deletion_audit.core import merkle
from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.checkpoint import Checkpoint, open_checkpoint
from deletion_audit.core.errors import FormatError
from deletion_audit.core.note import NoteVerifier

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX = re.compile(r"index (0|[1-9][0-9]{0,19})")


class TlogProofError(FormatError):
    """A tlog-proof file that breaks the format."""


@dataclass(frozen=True)
class TlogProof:
    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str  # the signed note, verbatim
    extra: bytes | None = None

    def text(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64encode(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(b64encode(h) for h in self.hashes)
        return "\n".join(lines) + "\n\n" + self.checkpoint

    def verify(self, leaf_data: bytes, verifier: NoteVerifier) -> Checkpoint:
        """The checkpoint, once its signature and the inclusion of ``leaf_data`` check out;
        raises SignatureError, NoteError or ProofError otherwise."""
        checkpoint = open_checkpoint(self.checkpoint, verifier)
        merkle.verify_inclusion(merkle.leaf_hash(leaf_data), self.index, checkpoint.size,
                                list(self.hashes), checkpoint.root_hash)
        return checkpoint


def parse_tlog_proof(text: str) -> TlogProof:
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise TlogProofError("tlog-proof has no blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise TlogProofError(f"tlog-proof must start with {HEADER!r}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        try:
            extra = b64decode(rest[0][len("extra "):])
        except FormatError as exc:
            raise TlogProofError(f"tlog-proof extra: {exc}") from None
        rest = rest[1:]
    if not rest or not _INDEX.fullmatch(rest[0]):
        raise TlogProofError("tlog-proof needs an 'index N' line (decimal, no leading zeros)")
    index = int(rest[0][len("index "):])
    hashes = []
    for number, line in enumerate(rest[1:], start=1):
        try:
            value = b64decode(line)
        except FormatError as exc:
            raise TlogProofError(f"tlog-proof hash {number}: {exc}") from None
        if len(value) != merkle.HASH_SIZE:
            raise TlogProofError(f"tlog-proof hash {number} is {len(value)} bytes, not 32")
        hashes.append(value)
    return TlogProof(index=index, hashes=tuple(hashes), checkpoint=checkpoint, extra=extra)
