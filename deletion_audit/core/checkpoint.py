"""C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) as a signed note."""

from __future__ import annotations

import re
from dataclasses import dataclass

from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.errors import FormatError
from deletion_audit.core.note import NoteError, NoteSigner, NoteVerifier, open_note, sign_note

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "\n".join(lines) + "\n"


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse a checkpoint body, or a whole note (its signature block is ignored here)."""
    body = text.split("\n\n", 1)[0]
    if not body.endswith("\n"):
        body += "\n"
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint needs an origin, a tree size and a root hash")
    origin, size_text, root_text, *extensions = lines
    if not origin or origin != origin.strip():
        raise NoteError("checkpoint origin line is empty or padded")
    if not _SIZE.fullmatch(size_text) or int(size_text) >= 1 << 64:
        raise NoteError(
            f"checkpoint tree size {size_text!r} is not a decimal without leading zeros"
        )
    try:
        root = b64decode(root_text)
    except FormatError as exc:
        raise NoteError(f"checkpoint root hash: {exc}") from None
    if len(root) != 32:
        raise NoteError(f"checkpoint root hash has {len(root)} bytes, not 32")
    if any(not e for e in extensions):
        raise NoteError("checkpoint has an empty extension line")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    if signer.name != checkpoint.origin:
        raise NoteError("a checkpoint is signed by the key named as its origin")
    return sign_note(checkpoint.text(), signer)


def open_checkpoint(note: str, verifier: NoteVerifier) -> Checkpoint:
    """Verify the log's signature, then parse; the origin must be the key's name."""
    opened = open_note(note, verifier)
    checkpoint = parse_checkpoint_text(opened.text)
    if checkpoint.origin != verifier.name:
        raise NoteError(
            f"checkpoint origin {checkpoint.origin!r} is not the log {verifier.name!r}"
        )
    return checkpoint
