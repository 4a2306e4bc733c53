"""Our DSSE against an independent implementation (securesystemslib 1.x), both ways.

securesystemslib matches a signature's keyid against the key's keyid before trying the key
(its issue #416), so its keys are built with the keyid our envelopes carry: our key id.
"""

from __future__ import annotations

import copy
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.dsse import Envelope as SslEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.errors import SignatureError

STATEMENT = json.dumps(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "manifest.jsonl", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://deletion-audit.org/attestation/manifest/v1",
        "predicate": {"caseNumber": "（2024）京0105刑初123号"},
    },
    ensure_ascii=False,
).encode()


def _ssl_key(public: Ed25519PublicKey, keyid: str) -> SSlibKey:
    return SSlibKey.from_crypto(public, keyid=keyid)


class TestOursVerifiedByThem:
    def test_single_signature(self) -> None:
        key = keys.generate()
        wire = dsse.sign(STATEMENT, dsse.IN_TOTO_PAYLOAD_TYPE, key).to_json_dict()
        theirs = SslEnvelope.from_dict(copy.deepcopy(wire))
        accepted = theirs.verify([_ssl_key(key.public_key(), keys.key_id(key))], 1)
        assert list(accepted) == [keys.key_id(key)]
        assert theirs.payload == STATEMENT
        assert theirs.pae() == dsse.pae(dsse.IN_TOTO_PAYLOAD_TYPE, STATEMENT)

    def test_cosigned_threshold_two(self) -> None:
        a, b = keys.generate(), keys.generate()
        ours = dsse.cosign(dsse.sign(STATEMENT, dsse.IN_TOTO_PAYLOAD_TYPE, a), b)
        theirs = SslEnvelope.from_dict(copy.deepcopy(ours.to_json_dict()))
        ssl_keys = [_ssl_key(k.public_key(), keys.key_id(k)) for k in (a, b)]
        assert set(theirs.verify(ssl_keys, 2)) == {keys.key_id(a), keys.key_id(b)}

    def test_tampered_payload_fails_for_them_too(self) -> None:
        key = keys.generate()
        wire = dsse.sign(STATEMENT, dsse.IN_TOTO_PAYLOAD_TYPE, key).to_json_dict()
        wire["payload"] = b64encode(STATEMENT + b" ")
        theirs = SslEnvelope.from_dict(copy.deepcopy(wire))
        with pytest.raises(VerificationError):
            theirs.verify([_ssl_key(key.public_key(), keys.key_id(key))], 1)


class TestTheirsVerifiedByUs:
    def test_single_signature(self) -> None:
        key = keys.generate()
        theirs = SslEnvelope(STATEMENT, dsse.IN_TOTO_PAYLOAD_TYPE, {})
        theirs.sign(CryptoSigner(key))
        parsed = dsse.from_json(json.dumps(theirs.to_dict()))
        verified = dsse.verify(parsed, [key.public_key()])
        assert verified.payload == STATEMENT
        assert verified.key_ids == (keys.key_id(key),)

    def test_their_keyid_is_not_ours_and_that_is_fine(self) -> None:
        # securesystemslib's default keyid is a hash of its own key encoding; we verify by
        # key, so a keyid we do not know changes nothing.
        key = keys.generate()
        theirs = SslEnvelope(STATEMENT, dsse.IN_TOTO_PAYLOAD_TYPE, {})
        signature = theirs.sign(CryptoSigner(key))
        assert signature.keyid != keys.key_id(key)
        parsed = dsse.from_json(theirs.to_dict())
        assert dsse.verify(parsed, [keys.generate().public_key(), key.public_key()]).payload == (
            STATEMENT
        )

    def test_two_signers(self) -> None:
        a, b = keys.generate(), keys.generate()
        theirs = SslEnvelope(STATEMENT, dsse.IN_TOTO_PAYLOAD_TYPE, {})
        theirs.sign(CryptoSigner(a))
        theirs.sign(CryptoSigner(b))
        parsed = dsse.from_json(theirs.to_dict())
        verified = dsse.verify(parsed, [a.public_key(), b.public_key()], threshold=2)
        assert set(verified.key_ids) == {keys.key_id(a), keys.key_id(b)}

    def test_wrong_key_fails(self) -> None:
        theirs = SslEnvelope(STATEMENT, dsse.IN_TOTO_PAYLOAD_TYPE, {})
        theirs.sign(CryptoSigner(keys.generate()))
        parsed = dsse.from_json(theirs.to_dict())
        with pytest.raises(SignatureError):
            dsse.verify(parsed, [keys.generate().public_key()])
