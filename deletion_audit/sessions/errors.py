"""The precise refusals of the session endpoints (each its own code)."""

from __future__ import annotations

from deletion_audit.errors import Conflict, Forbidden, Unprocessable


class NotParticipant(Forbidden):
    code = "not_participant"


class UnknownKey(Forbidden):
    code = "unknown_key"


class KeyRevoked(Forbidden):
    code = "key_revoked"


class SessionClosed(Conflict):
    code = "session_closed"


class NoRecord(Conflict):
    code = "no_record"


class RecordChanged(Conflict):
    code = "record_changed"


class DuplicateSignature(Conflict):
    code = "duplicate_signature"


class AlreadySigned(Conflict):
    code = "already_signed"


class RecordSigned(Conflict):
    code = "record_signed"


class InvalidSignature(Unprocessable):
    code = "invalid_signature"
