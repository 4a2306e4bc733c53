"""The distinct, actionable refusals of agent requests (agents/PROTOCOL.md)."""

from __future__ import annotations

from deletion_audit.errors import BadRequest, Forbidden, Unauthorized


class TokenInvalid(Unauthorized):
    code = "token_invalid"


class TokenUsed(Unauthorized):
    code = "token_used"


class TokenExpired(Unauthorized):
    code = "token_expired"


class ClockSkew(Unauthorized):
    """Retryable: the agent fixes its clock (or waits) and signs again."""

    code = "clock_skew"


class Replayed(Unauthorized):
    code = "replayed"


class UnknownAgent(Unauthorized):
    code = "unknown_agent"


class BadSignature(Unauthorized):
    code = "bad_signature"


class BadContentDigest(BadRequest):
    code = "bad_content_digest"


class Revoked(Forbidden):
    code = "revoked"
