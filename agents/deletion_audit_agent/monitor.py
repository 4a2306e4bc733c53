"""Every agent is a monitor of the log: it keeps the newest checkpoint it has seen and, on
every contact, checks that the server's current checkpoint is consistent with it (RFC 9162
§2.1.4). A server whose log forked, or was restored to an older state, is refused."""

from __future__ import annotations

from deletion_audit.core.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint_text
from deletion_audit.core.errors import CoreError
from deletion_audit.core.merkle import verify_consistency
from deletion_audit.core.note import NoteVerifier
from deletion_audit_agent.client import API, AgentClient
from deletion_audit_agent.state import State


class LogForkError(Exception):
    """The server's log is not an extension of what this agent saw before."""


def _proof(client: AgentClient, first: int, second: int) -> list[bytes]:
    body = client.get_json(f"/log/proof/consistency?first={first}&second={second}")
    return [bytes.fromhex(h) for h in body["hashes"]]


def observe(state: State, client: AgentClient, note: str | None, log_key: str) -> Checkpoint:
    """Verify ``note`` (or fetch the current checkpoint), check it against the newest one
    kept, and keep the newer of the two."""
    if note is None:
        note = client.request("GET", API + "/log/checkpoint").text
    try:
        new = open_checkpoint(note, NoteVerifier.from_vkey(log_key))
    except CoreError as exc:
        raise LogForkError(f"the server's checkpoint does not verify with the enrolled log "
                           f"key: {exc}") from None
    kept_note = state.get("checkpoint")
    if kept_note is None:
        state.put("checkpoint", note)
        return new
    old = parse_checkpoint_text(kept_note)
    try:
        if new.size == old.size:
            if new.root_hash != old.root_hash:
                raise LogForkError(f"two checkpoints of size {new.size} with different roots")
        elif new.size > old.size and old.size > 0:
            verify_consistency(old.size, new.size, _proof(client, old.size, new.size),
                               old.root_hash, new.root_hash)
        elif new.size < old.size and new.size > 0:
            # A lagging replica may show an older checkpoint: it must be a prefix of ours.
            verify_consistency(new.size, old.size, _proof(client, new.size, old.size),
                               new.root_hash, old.root_hash)
    except CoreError as exc:
        raise LogForkError(f"the server's log (size {new.size}) is not consistent with the "
                           f"checkpoint this agent kept (size {old.size}): {exc}") from None
    if new.size > old.size:
        state.put("checkpoint", note)
    return new
