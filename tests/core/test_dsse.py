"""DSSE envelopes: PAE, signing, thresholds, the wire form, and the base64 it uses."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.errors import FormatError, SignatureError

PAYLOAD = b'{"_type":"https://in-toto.io/Statement/v1"}'
PT = dsse.IN_TOTO_PAYLOAD_TYPE
# Fixed keys keep failures reproducible; generating is as good for the properties tested.
KEY_A, KEY_B, KEY_C = (keys.generate() for _ in range(3))


class TestB64:
    def test_encode_is_standard_and_padded(self) -> None:
        assert b64encode(b"\xfb\xff") == "+/8="

    @pytest.mark.parametrize("text", ["+/8=", "+/8", "-_8=", "-_8"])
    def test_decode_accepts_both_alphabets_with_or_without_padding(self, text: str) -> None:
        assert b64decode(text) == b"\xfb\xff"

    def test_empty(self) -> None:
        assert b64decode("") == b""

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ("aGVsbG8=\n", "outside the alphabet"),
            ("aGVs bG8=", "outside the alphabet"),
            ("aGVs*bG8=", "outside the alphabet"),
            ("aG=Vs", "outside the alphabet"),
            ("+-8=", "mixes"),
            ("aGVsbG8==", "wrong padding"),
            ("aGVsbA=", "wrong padding"),
            ("aGVsb", "impossible length"),
            ("QR==", "trailing bits"),
            ("aGVsbG9=", "trailing bits"),
        ],
    )
    def test_decode_refuses(self, text: str, problem: str) -> None:
        with pytest.raises(FormatError, match=problem):
            b64decode(text)

    def test_decode_refuses_non_strings(self) -> None:
        with pytest.raises(FormatError, match="must be a string"):
            b64decode(b"AAAA")  # type: ignore[arg-type]

    @given(st.binary(max_size=200))
    def test_every_spelling_decodes_to_the_same_bytes(self, data: bytes) -> None:
        standard = base64.b64encode(data).decode()
        urlsafe = base64.urlsafe_b64encode(data).decode()
        for text in (standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")):
            assert b64decode(text) == data

    @given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                            "0123456789+/-_= \n.", max_size=40))
    def test_decode_accepts_only_exact_encodings(self, text: str) -> None:
        # Whatever decodes must re-encode to the input, up to alphabet and padding:
        # nothing is silently dropped or ignored.
        try:
            data = b64decode(text)
        except FormatError:
            return
        normalised = text.replace("-", "+").replace("_", "/").rstrip("=")
        assert b64encode(data).rstrip("=") == normalised


class TestPae:
    def test_spec_vector(self) -> None:
        assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        )

    def test_lengths_are_bytes_not_characters(self) -> None:
        assert dsse.pae("é", "ü".encode()) == "DSSEv1 2 é 2 ü".encode()

    def test_empty_payload(self) -> None:
        assert dsse.pae("t", b"") == b"DSSEv1 1 t 0 "


class TestSignAndVerify:
    def test_round_trip(self) -> None:
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        verified = dsse.verify(envelope, [KEY_A.public_key()])
        assert verified.payload == PAYLOAD
        assert verified.payload_type == PT
        assert verified.key_ids == (keys.key_id(KEY_A),)

    def test_emits_our_key_id(self) -> None:
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        assert envelope.signatures[0].keyid == keys.key_id(KEY_A)

    def test_signature_is_over_pae(self) -> None:
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        KEY_A.public_key().verify(envelope.signatures[0].sig, dsse.pae(PT, PAYLOAD))

    def test_untrusted_key_fails(self) -> None:
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        with pytest.raises(SignatureError, match="0 of 1 required"):
            dsse.verify(envelope, [KEY_B.public_key()])

    def test_tampered_payload_fails(self) -> None:
        envelope = replace(dsse.sign(PAYLOAD, PT, KEY_A), payload=PAYLOAD + b" ")
        with pytest.raises(SignatureError):
            dsse.verify(envelope, [KEY_A.public_key()])

    def test_tampered_payload_type_fails(self) -> None:
        envelope = replace(dsse.sign(PAYLOAD, PT, KEY_A), payload_type="application/json")
        with pytest.raises(SignatureError):
            dsse.verify(envelope, [KEY_A.public_key()])

    def test_keyid_mismatch_still_verifies(self) -> None:
        # keyid is a hint: a wrong or foreign keyid must not make a good signature fail.
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        renamed = replace(
            envelope, signatures=(dsse.Signature("someone-else", envelope.signatures[0].sig),)
        )
        verified = dsse.verify(renamed, [KEY_B.public_key(), KEY_A.public_key()])
        assert verified.key_ids == (keys.key_id(KEY_A),)

    def test_empty_keyid_still_verifies(self) -> None:
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        anonymous = replace(envelope, signatures=(dsse.Signature("", envelope.signatures[0].sig),))
        assert dsse.verify(anonymous, [KEY_A.public_key()]).payload == PAYLOAD

    def test_keyid_naming_a_trusted_key_with_a_bad_signature_falls_through(self) -> None:
        # The signature is A's, the keyid claims B: B is tried first, then A verifies.
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        misnamed = replace(
            envelope,
            signatures=(dsse.Signature(keys.key_id(KEY_B), envelope.signatures[0].sig),),
        )
        verified = dsse.verify(misnamed, [KEY_B.public_key(), KEY_A.public_key()])
        assert verified.key_ids == (keys.key_id(KEY_A),)

    def test_non_ascii_payload_type_is_refused_when_signing(self) -> None:
        with pytest.raises(FormatError, match="ASCII"):
            dsse.sign(PAYLOAD, "application/vnd.é", KEY_A)


class TestThreshold:
    def _three(self) -> dsse.Envelope:
        return dsse.cosign(dsse.cosign(dsse.sign(PAYLOAD, PT, KEY_A), KEY_B), KEY_C)

    def test_all_signers_are_reported(self) -> None:
        trusted = [KEY_A.public_key(), KEY_B.public_key(), KEY_C.public_key()]
        verified = dsse.verify(self._three(), trusted, threshold=3)
        assert verified.key_ids == tuple(keys.key_id(k) for k in (KEY_A, KEY_B, KEY_C))

    def test_two_of_three_trusted(self) -> None:
        envelope = dsse.cosign(dsse.sign(PAYLOAD, PT, KEY_A), KEY_C)
        trusted = [KEY_A.public_key(), KEY_B.public_key(), KEY_C.public_key()]
        assert len(dsse.verify(envelope, trusted, threshold=2).key_ids) == 2

    def test_too_few_says_how_many(self) -> None:
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        trusted = [KEY_A.public_key(), KEY_B.public_key()]
        with pytest.raises(SignatureError, match="1 of 2 required signature"):
            dsse.verify(envelope, trusted, threshold=2)

    def test_one_key_counts_once_however_often_it_signed(self) -> None:
        # Regression: the same signature repeated (under different keyids) must not reach a
        # threshold of two.
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        sig = envelope.signatures[0].sig
        doubled = replace(
            envelope, signatures=(dsse.Signature("x", sig), dsse.Signature("y", sig))
        )
        with pytest.raises(SignatureError, match="1 of 2"):
            dsse.verify(doubled, [KEY_A.public_key(), KEY_B.public_key()], threshold=2)

    def test_a_key_trusted_twice_counts_once(self) -> None:
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        with pytest.raises(ValueError, match="exceeds the 1 distinct"):
            dsse.verify(envelope, [KEY_A.public_key(), KEY_A.public_key()], threshold=2)

    @pytest.mark.parametrize("threshold", [0, -1])
    def test_threshold_below_one_is_an_error(self, threshold: int) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            dsse.verify(dsse.sign(PAYLOAD, PT, KEY_A), [KEY_A.public_key()], threshold)

    def test_threshold_above_key_count_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="exceeds"):
            dsse.verify(dsse.sign(PAYLOAD, PT, KEY_A), [KEY_A.public_key()], threshold=2)

    def test_no_trusted_keys_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="exceeds the 0"):
            dsse.verify(dsse.sign(PAYLOAD, PT, KEY_A), [])


class TestCosign:
    def test_adds_a_signature(self) -> None:
        envelope = dsse.cosign(dsse.sign(PAYLOAD, PT, KEY_A), KEY_B)
        assert [s.keyid for s in envelope.signatures] == [keys.key_id(KEY_A), keys.key_id(KEY_B)]
        assert envelope.payload == PAYLOAD

    def test_same_key_twice_is_refused(self) -> None:
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        with pytest.raises(SignatureError, match=f"already signed by key {keys.key_id(KEY_A)}"):
            dsse.cosign(envelope, KEY_A)

    def test_same_key_under_another_keyid_is_refused(self) -> None:
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        renamed = replace(
            envelope, signatures=(dsse.Signature("other", envelope.signatures[0].sig),)
        )
        with pytest.raises(SignatureError, match="already signed"):
            dsse.cosign(renamed, KEY_A)


def _wire(envelope: dsse.Envelope) -> dict[str, Any]:
    return envelope.to_json_dict()


class TestWireForm:
    def test_shape(self) -> None:
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        wire = _wire(envelope)
        assert set(wire) == {"payload", "payloadType", "signatures"}
        assert base64.b64decode(wire["payload"]) == PAYLOAD
        assert wire["signatures"][0]["keyid"] == keys.key_id(KEY_A)
        assert base64.b64decode(wire["signatures"][0]["sig"]) == envelope.signatures[0].sig

    def test_from_bytes_str_and_dict(self) -> None:
        envelope = dsse.sign(PAYLOAD, PT, KEY_A)
        assert dsse.Envelope.from_json(envelope.to_json()) == envelope
        assert dsse.Envelope.from_json(envelope.to_json().decode()) == envelope
        assert dsse.from_json(_wire(envelope)) == envelope

    def test_url_safe_unpadded_wire_form_verifies(self) -> None:
        envelope = dsse.sign(b"\xfb\xff\xfe" * 7 + b"?", PT, KEY_A)
        wire = _wire(envelope)
        wire["payload"] = base64.urlsafe_b64encode(envelope.payload).decode().rstrip("=")
        wire["signatures"][0]["sig"] = (
            base64.urlsafe_b64encode(envelope.signatures[0].sig).decode().rstrip("=")
        )
        parsed = dsse.from_json(wire)
        assert dsse.verify(parsed, [KEY_A.public_key()]).payload == envelope.payload

    def test_unknown_fields_are_ignored(self) -> None:
        wire = _wire(dsse.sign(PAYLOAD, PT, KEY_A))
        wire["extension"] = {"kind": "x"}
        wire["signatures"][0]["cert"] = "..."
        assert dsse.from_json(wire).payload == PAYLOAD

    def test_missing_keyid_is_empty(self) -> None:
        wire = _wire(dsse.sign(PAYLOAD, PT, KEY_A))
        del wire["signatures"][0]["keyid"]
        assert dsse.from_json(wire).signatures[0].keyid == ""

    @pytest.mark.parametrize(
        ("mutate", "problem"),
        [
            (lambda w: w.pop("payload"), "no payload string"),
            (lambda w: w.update(payload=5), "no payload string"),
            (lambda w: w.update(payload="a!"), "envelope payload: .*alphabet"),
            (lambda w: w.pop("payloadType"), "no payloadType"),
            (lambda w: w.update(payloadType=""), "no payloadType"),
            (lambda w: w.update(signatures=[]), "at least one"),
            (lambda w: w.update(signatures={}), "no signatures list"),
            (lambda w: w.update(signatures=["sig"]), "signature 0 is not an object"),
            (lambda w: w["signatures"][0].pop("sig"), "signature 0 has no sig"),
            (lambda w: w["signatures"][0].update(sig=""), "signature 0 is empty"),
            (lambda w: w["signatures"][0].update(keyid=7), "keyid is not a string"),
            (lambda w: w.update(signatures=w["signatures"] * 101), "over 100"),
        ],
    )
    def test_malformed_is_a_clear_format_error(self, mutate: Any, problem: str) -> None:
        wire = _wire(dsse.sign(PAYLOAD, PT, KEY_A))
        mutate(wire)
        with pytest.raises(FormatError, match=problem):
            dsse.from_json(wire)

    @pytest.mark.parametrize(
        ("data", "problem"),
        [
            (b"[]", "not a JSON object"),
            (b"{", "not valid JSON"),
            (b"\xff\xfe{}", "not UTF-8"),
            (b'{"payload": "", "payload": "AA=="}', "duplicate key 'payload'"),
            (b'{"payload": NaN}', "NaN is not JSON"),
        ],
    )
    def test_bad_json(self, data: bytes, problem: str) -> None:
        with pytest.raises(FormatError, match=problem):
            dsse.from_json(data)

    @given(
        payload=st.binary(max_size=300),
        payload_type=st.text(
            alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1
        ),
        signatures=st.lists(
            st.tuples(st.text(max_size=20), st.binary(min_size=1, max_size=80)),
            min_size=1, max_size=4,
        ),
    )
    def test_json_round_trip(
        self, payload: bytes, payload_type: str, signatures: list[tuple[str, bytes]]
    ) -> None:
        envelope = dsse.Envelope(
            payload, payload_type, tuple(dsse.Signature(k, s) for k, s in signatures)
        )
        assert dsse.from_json(envelope.to_json()) == envelope
        assert json.loads(envelope.to_json()) == envelope.to_json_dict()

    @given(payload=st.binary(max_size=200))
    def test_signed_envelopes_survive_the_wire(self, payload: bytes) -> None:
        envelope = dsse.sign(payload, PT, KEY_A)
        parsed = dsse.from_json(envelope.to_json())
        assert dsse.verify(parsed, [KEY_A.public_key()]).payload == payload
