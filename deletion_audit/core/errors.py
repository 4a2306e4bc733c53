"""The error types of the core formats.

Every parser and verifier in ``deletion_audit.core`` raises a subclass of :class:`CoreError`
with a message that says what is wrong and, where it helps, where.
"""


class CoreError(Exception):
    """Base of every error raised by ``deletion_audit.core``."""


class FormatError(CoreError, ValueError):
    """Input that does not follow its format (malformed JSON, base64, note text, ...)."""


class PredicateError(FormatError):
    """A statement with one of our predicate types breaks that predicate's schema,
    or names a predicate type of ours that does not exist."""


class SignatureError(CoreError):
    """A signature that does not verify, or too few valid signatures for a threshold."""


class ProofError(CoreError):
    """A Merkle inclusion or consistency proof that does not verify or is malformed."""


class KeyFileError(CoreError):
    """A key file that cannot be written or read (exists, wrong permissions, bad PEM)."""
