"""in-toto Statement v1 parsing, canonical JSON, and our strict predicates."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deletion_audit.core import keys
from deletion_audit.core import predicates as p
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.canonical import canonical_json, parse_json
from deletion_audit.core.errors import FormatError, PredicateError
from deletion_audit.core.statements import (
    STATEMENT_TYPE,
    Statement,
    Subject,
    parse_statement,
    statement_bytes,
    statement_id,
)

H1, H2, H3 = ("a" * 64, "b" * 64, "c" * 64)


def _statement(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "manifest.jsonl", "digest": {"sha256": H1}}],
        "predicateType": "https://example.com/predicate/v1",
        "predicate": {"x": 1},
    }
    body.update(overrides)
    return body


def _bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


class TestCanonicalJson:
    def test_rfc8785_key_order_and_no_whitespace(self) -> None:
        assert canonical_json({"b": [1, "é"], "a": None, "c": True}) == (
            '{"a":null,"b":[1,"é"],"c":true}'.encode()
        )

    def test_read_only_mappings_and_tuples(self) -> None:
        statement = Statement((Subject("n", {"sha256": H1}),), "https://x.example/t/v1", {})
        assert canonical_json({"s": statement.subject[0].digest, "t": (1, 2)}) == (
            b'{"s":{"sha256":"' + H1.encode() + b'"},"t":[1,2]}'
        )

    def test_non_json_values_are_format_errors(self) -> None:
        with pytest.raises(FormatError, match="cannot be canonicalised"):
            canonical_json({"when": datetime.now(UTC)})
        with pytest.raises(FormatError, match="cannot be canonicalised"):
            canonical_json({"big": 2**60})

    @given(st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    ))
    def test_parse_of_canonical_is_identity(self, value: Any) -> None:
        encoded = canonical_json(value)
        assert parse_json(encoded) == value
        assert canonical_json(parse_json(encoded)) == encoded


class TestParseJson:
    def test_duplicate_keys_are_refused(self) -> None:
        with pytest.raises(FormatError, match="duplicate key 'a'"):
            parse_json(b'{"a": 1, "b": {"a": 2}, "a": 3}')

    def test_nested_duplicates_are_refused(self) -> None:
        with pytest.raises(FormatError, match="duplicate key 'z'"):
            parse_json(b'{"a": {"z": 1, "z": 2}}')

    @pytest.mark.parametrize("text", ["Infinity", "-Infinity", "NaN"])
    def test_non_json_constants(self, text: str) -> None:
        with pytest.raises(FormatError, match="is not JSON"):
            parse_json(f'{{"a": {text}}}', what="thing")

    def test_utf16_is_not_guessed(self) -> None:
        with pytest.raises(FormatError, match="not UTF-8"):
            parse_json('{"a": 1}'.encode("utf-16"))


class TestParseStatement:
    def test_valid(self) -> None:
        statement = parse_statement(_bytes(_statement()))
        assert statement.subject == (Subject("manifest.jsonl", {"sha256": H1}),)
        assert statement.subject[0].sha256 == H1
        assert statement.predicate_type == "https://example.com/predicate/v1"
        assert statement.predicate == {"x": 1}

    def test_unknown_fields_are_ignored_everywhere(self) -> None:
        body = _statement(extra={"k": 1})
        body["subject"][0]["uri"] = "pkg:generic/x"
        body["subject"][0]["digest"]["somecoolhash"] = "XYZ"
        statement = parse_statement(_bytes(body))
        assert statement.subject[0].digest == {"sha256": H1, "somecoolhash": "XYZ"}

    def test_absent_predicate_is_empty(self) -> None:
        body = _statement()
        del body["predicate"]
        assert parse_statement(_bytes(body)).predicate == {}

    def test_name_is_optional(self) -> None:
        body = _statement(subject=[{"digest": {"sha256": H1}}])
        statement = parse_statement(_bytes(body))
        assert statement.subject[0].name is None
        assert "name" not in parse_json(statement_bytes(statement))["subject"][0]

    def test_several_subjects_keep_their_order(self) -> None:
        subjects = [{"name": n, "digest": {"sha256": h}} for n, h in (("b", H2), ("a", H1))]
        statement = parse_statement(_bytes(_statement(subject=subjects)))
        assert [s.name for s in statement.subject] == ["b", "a"]

    def test_sha512(self) -> None:
        body = _statement(subject=[{"name": "x", "digest": {"sha512": "0f" * 64}}])
        assert parse_statement(_bytes(body)).subject[0].sha256 is None

    @pytest.mark.parametrize(
        ("change", "problem"),
        [
            ({"_type": "https://in-toto.io/Statement/v0.1"}, "_type must be"),
            ({"_type": None}, "_type must be"),
            ({"subject": []}, "non-empty list"),
            ({"subject": {"name": "x"}}, "non-empty list"),
            ({"subject": ["x"]}, r"subject\[0\] is not an object"),
            ({"subject": [{"name": "x"}]}, r"subject\[0\]\.digest must be a non-empty object"),
            ({"subject": [{"name": "x", "digest": {}}]}, "non-empty object"),
            ({"subject": [{"name": 3, "digest": {"sha256": H1}}]}, "name is not a string"),
            ({"subject": [{"digest": {"sha256": H1.upper()}}]}, "sha256 must be lowercase hex"),
            ({"subject": [{"digest": {"sha256": H1[:-2]}}]}, "must be 64 hex digits, got 62"),
            ({"subject": [{"digest": {"sha512": H1}}]}, "must be 128 hex digits"),
            ({"subject": [{"digest": {"sha256": 5}}]}, "non-empty string"),
            ({"subject": [{"digest": {"other": ""}}]}, "non-empty string"),
            ({"predicateType": ""}, "non-empty string"),
            ({"predicateType": 7}, "non-empty string"),
            ({"predicateType": "not a uri"}, "not a URI"),
            ({"predicateType": "HTTPS://example.com/x/v1"}, "not a URI"),
            ({"predicateType": "https://Example.com/x/v1"}, "lowercase authority"),
            ({"predicate": []}, "predicate must be a JSON object"),
            ({"predicate": None}, "predicate must be a JSON object"),
        ],
    )
    def test_invalid(self, change: dict[str, Any], problem: str) -> None:
        with pytest.raises(FormatError, match=problem):
            parse_statement(_bytes(_statement(**change)))

    def test_not_an_object(self) -> None:
        with pytest.raises(FormatError, match="not a JSON object"):
            parse_statement(b"[1]")

    def test_not_json(self) -> None:
        with pytest.raises(FormatError, match="statement is not valid JSON"):
            parse_statement(b"{'_type': 1}")

    def test_is_immutable(self) -> None:
        statement = parse_statement(_bytes(_statement()))
        with pytest.raises(TypeError):
            statement.subject[0].digest["sha256"] = H2  # type: ignore[index]


class TestStatementBytes:
    def test_canonical_and_parses_back(self) -> None:
        statement = parse_statement(_bytes(_statement()))
        data = statement_bytes(statement)
        assert data == canonical_json(parse_json(data))
        assert parse_statement(data) == statement

    def test_independent_of_input_key_order(self) -> None:
        body = _statement()
        reordered = dict(reversed(list(body.items())))
        assert statement_bytes(parse_statement(_bytes(body))) == statement_bytes(
            parse_statement(_bytes(reordered))
        )

    def test_statement_id_is_sha256_of_the_payload(self) -> None:
        data = _bytes(_statement())
        assert statement_id(data) == hashlib.sha256(data).hexdigest()


# -- our predicates ----------------------------------------------------------------------

KEY = keys.generate()
T0 = "2026-03-02T01:30:00Z"
T1 = "2026-03-02T02:00:00Z"

VALID: dict[str, dict[str, Any]] = {
    p.MANIFEST: {
        "formatName": "deletion-audit-manifest", "formatVersion": 1,
        "caseNumber": "（2024）京0105刑初123号", "hashAlgorithm": "sha256", "count": 3,
        "root": H1, "createdAt": T0, "examinerKeyId": keys.key_id(KEY),
    },
    p.SCAN: {
        "caseId": "case-1", "agentId": "agent-1", "seq": 4, "prev": H1,
        "agentBuildDigest": H2, "scopeId": "scope-1", "scopeSpecDigest": H3,
        "scanId": "scan-1", "part": 2, "last": True, "challenge": "nonce-1",
        "presentDigests": [H1, H2], "coverage": "complete",
        "counts": {"objects": 10, "hashed": 9, "hashedBytes": 4096, "present": 2,
                   "skipped": {"too-large": 1}},
        "root": H3, "startedAt": T0, "finishedAt": T1,
    },
    p.DELETION: {
        "caseId": "case-1", "agentId": "agent-1", "seq": 0, "prev": None,
        "agentBuildDigest": H2, "scopeId": "scope-1", "grade": "sanitised",
        "method": "overwrite", "deletedDigests": [H1], "deletedAt": T1,
    },
    p.CUSTODY: {
        "caseId": "case-1", "agentId": "agent-1", "seq": 1, "prev": H1,
        "agentBuildDigest": H2, "mediumId": "tape-7", "action": "sealed", "itemCount": 25681,
        "occurredAt": T0,
    },
    p.CUSTODY_STATEMENT: {
        "caseId": "case-1", "obligationId": "7", "partyId": "party-3", "mediumId": "tape-7",
        "action": "destroyed", "itemCount": 25681, "occurredAt": T1,
    },
    p.DEIDENTIFY: {
        "caseId": "case-1", "datasetName": "open-data", "datasetDigest": H1, "records": 100,
        "rules": ["mask-face", "drop-id-number"], "result": "pass", "checkedAt": T0,
    },
    p.VENDOR: {
        "caseId": "case-1", "partyId": "vendor-1", "flowId": "flow-1", "status": "deleted",
        "itemCount": 12, "statedAt": T0,
    },
    p.KEY_REGISTRATION: {
        "keyId": keys.key_id(KEY), "publicKey": b64encode(keys.raw_public(KEY)),
        "subjectType": "agent", "subjectId": "agent-1", "registeredAt": T0,
        "caseId": "case-1", "partyId": "party-1", "role": "respondent",
        "scopeIds": ["scope-1"],
    },
    p.SESSION: {
        "caseId": "case-1", "sessionId": "s-1", "place": "某售楼处机房", "plannedAt": T0,
        "signOff": "prosecutor+2-witnesses",
        "participants": [{"userId": "7", "role": "witness", "organisation": "区人大常委会",
                          "notifiedAt": T0}],
        "scopes": [{"scopeId": "scope-1", "specDigest": H1, "scans": [{
            "agentId": "agent-1", "attestedBy": "examiner", "agentBuildDigest": H2,
            "scanId": "scan-1", "challengeId": "4", "coverage": "complete", "objects": 10,
            "itemsPresent": 0}], "itemsPresent": 0, "foundByExaminerOnly": 0,
            "foundByCompanyOnly": 0}],
        "scanIds": ["scan-1"], "objectsScanned": 10,
        "itemsPresent": 0, "itemsCommitment": H3,
        "environment": {"checkedBy": "5", "checkedAt": T0, "hostMatchesDeclared": True},
        "summary": {"zh": "未发现清单所列数据。", "en": "No listed item was found."},
        "outcome": "clean", "startedAt": T0, "finishedAt": T1,
    },
    p.SUMMARY: {
        "caseId": "case-1", "scopeId": "scope-1", "agentId": "agent-1", "scanId": "scan-1",
        "statementIds": [H1], "challenged": True, "objects": 10, "itemsPresent": 0,
        "finishedAt": T0, "issuedAt": T1,
    },
    p.JUDGMENT: {
        "caseId": "case-1", "finding": "silent-agent", "agentId": "agent-1",
        "detail": "no heartbeat for 5 intervals", "judgedAt": T0,
    },
    p.VERDICT: {
        "caseId": "case-1", "version": 3, "outcome": "insufficient_evidence",
        "reasons": ["source-not-covered"],
        "items": {"total": 3, "present": 0, "deleted": 2, "unseen": 1},
        "asOfLogSize": 120, "asOf": T1,
    },
}


def _ours(predicate_type: str, predicate: dict[str, Any]) -> Statement:
    return Statement((Subject("x", {"sha256": H1}),), predicate_type, predicate)


class TestPredicateTypes:
    def test_one_namespace_and_versioned(self) -> None:
        assert len(p.PREDICATE_MODELS) == 12
        for uri in p.PREDICATE_MODELS:
            assert uri.startswith("https://deletion-audit.org/attestation/")
            assert re.search(r"/v[1-9][0-9]*$", uri)

    def test_every_type_has_a_valid_example_here(self) -> None:
        assert set(VALID) == set(p.PREDICATE_MODELS)


class TestParsePredicate:
    @pytest.mark.parametrize("predicate_type", sorted(VALID))
    def test_valid_round_trips(self, predicate_type: str) -> None:
        model = p.parse_predicate(_ours(predicate_type, VALID[predicate_type]))
        assert isinstance(model, p.PREDICATE_MODELS[predicate_type])
        assert model.to_predicate() == VALID[predicate_type]

    @pytest.mark.parametrize("predicate_type", sorted(VALID))
    def test_missing_required_field_is_named(self, predicate_type: str) -> None:
        predicate = dict(VALID[predicate_type])
        first = next(iter(predicate))
        del predicate[first]
        expected = f"{re.escape(predicate_type)} is invalid: .*{first}"
        with pytest.raises(PredicateError, match=expected):
            p.parse_predicate(_ours(predicate_type, predicate))

    @pytest.mark.parametrize("predicate_type", sorted(VALID))
    def test_unknown_field_of_ours_is_refused(self, predicate_type: str) -> None:
        predicate = {**VALID[predicate_type], "surprise": 1}
        with pytest.raises(PredicateError, match="surprise: Extra inputs are not permitted"):
            p.parse_predicate(_ours(predicate_type, predicate))

    def test_snake_case_spelling_is_an_unknown_field(self) -> None:
        predicate = dict(VALID[p.MANIFEST])
        predicate["case_number"] = predicate.pop("caseNumber")
        with pytest.raises(PredicateError, match="caseNumber: Field required"):
            p.parse_predicate(_ours(p.MANIFEST, predicate))

    def test_unknown_predicate_type_of_ours(self) -> None:
        statement = _ours("https://deletion-audit.org/attestation/receipt/v1", {})
        with pytest.raises(PredicateError, match=r"unknown predicate type .*receipt/v1 of "
                                                 r"deletion-audit; known: .*manifest/v1"):
            p.parse_predicate(statement)

    def test_unknown_version_of_ours(self) -> None:
        with pytest.raises(PredicateError, match="unknown predicate type"):
            p.parse_predicate(_ours(p.predicate_type_uri("scan", 2), VALID[p.SCAN]))

    def test_foreign_predicate_types_are_not_ours_to_judge(self) -> None:
        assert p.parse_predicate(_ours("https://slsa.dev/provenance/v1", {"any": "x"})) is None

    def test_expect_predicate(self) -> None:
        scan = p.expect_predicate(_ours(p.SCAN, VALID[p.SCAN]), p.ScanPredicate)
        assert scan.seq == 4
        with pytest.raises(PredicateError, match=r"expected predicate type .*scan/v1"):
            p.expect_predicate(_ours(p.DELETION, VALID[p.DELETION]), p.ScanPredicate)

    def test_predicate_error_is_a_format_error(self) -> None:
        # Callers that catch FormatError for "bad input" also catch predicate problems.
        assert issubclass(PredicateError, FormatError)

    def test_error_paths_point_into_lists(self) -> None:
        predicate = copy.deepcopy(VALID[p.SCAN])
        predicate["presentDigests"][1] = "XYZ"
        with pytest.raises(PredicateError, match=r"presentDigests\[1\]"):
            p.parse_predicate(_ours(p.SCAN, predicate))


def _invalid(predicate_type: str, **changes: Any) -> None:
    predicate = {**copy.deepcopy(VALID[predicate_type]), **changes}
    with pytest.raises(PredicateError):
        p.parse_predicate(_ours(predicate_type, predicate))


class TestPredicateRules:
    def test_types_are_strict(self) -> None:
        _invalid(p.MANIFEST, count="3")
        _invalid(p.SCAN, seq=True)
        _invalid(p.SCAN, last=1)
        _invalid(p.MANIFEST, count=3.0)

    def test_manifest(self) -> None:
        _invalid(p.MANIFEST, count=0)
        _invalid(p.MANIFEST, hashAlgorithm="sha1")
        _invalid(p.MANIFEST, root="A" * 64)
        _invalid(p.MANIFEST, examinerKeyId="ab")

    @pytest.mark.parametrize(
        "value",
        ["2026-03-02T01:30:00+08:00", "2026-03-02 01:30:00Z", "2026-03-02", "1714000000",
         "2026-13-02T01:30:00Z"],
    )
    def test_times_are_rfc3339_utc_z(self, value: str) -> None:
        _invalid(p.MANIFEST, createdAt=value)

    def test_fractional_seconds_are_fine(self) -> None:
        model = p.parse_predicate(_ours(p.MANIFEST, {**VALID[p.MANIFEST],
                                                     "createdAt": "2026-03-02T01:30:00.25Z"}))
        assert isinstance(model, p.ManifestPredicate)
        assert model.created_at == datetime(2026, 3, 2, 1, 30, 0, 250000, tzinfo=UTC)

    def test_scan_totals_only_on_the_last_part(self) -> None:
        _invalid(p.SCAN, last=False)
        middle = {k: v for k, v in VALID[p.SCAN].items() if k not in ("counts", "root",
                                                                      "coverage")}
        assert p.parse_predicate(_ours(p.SCAN, {**middle, "last": False})) is not None
        with pytest.raises(PredicateError, match="last part must carry"):
            p.parse_predicate(_ours(p.SCAN, middle))

    def test_scan_digest_limit(self) -> None:
        digests = [f"{i:064x}" for i in range(p.MAX_DIGESTS_PER_STATEMENT + 1)]
        _invalid(p.SCAN, presentDigests=digests)

    def test_scan_times_in_order(self) -> None:
        _invalid(p.SCAN, startedAt=T1, finishedAt=T0)

    def test_chain_prev_null_exactly_at_seq_zero(self) -> None:
        _invalid(p.SCAN, prev=None)
        _invalid(p.DELETION, prev=H1)
        _invalid(p.SCAN, seq=-1)

    def test_first_statement_keeps_its_null_prev(self) -> None:
        # Regression: dropping None on output made a first statement fail its own schema.
        model = p.parse_predicate(_ours(p.DELETION, VALID[p.DELETION]))
        assert model is not None
        assert model.to_predicate()["prev"] is None

    def test_prev_is_required_even_when_null(self) -> None:
        predicate = dict(VALID[p.DELETION])
        del predicate["prev"]
        with pytest.raises(PredicateError, match="prev: Field required"):
            p.parse_predicate(_ours(p.DELETION, predicate))

    def test_deletion_grades(self) -> None:
        _invalid(p.DELETION, grade="anonymised")
        _invalid(p.DELETION, deletedDigests=[])
        for grade in ("logical", "restricted", "sanitised", "deidentified"):
            assert p.parse_predicate(_ours(p.DELETION, {**VALID[p.DELETION], "grade": grade}))

    def test_key_registration_key_id_must_match_the_key(self) -> None:
        _invalid(p.KEY_REGISTRATION, keyId=H1)
        _invalid(p.KEY_REGISTRATION, publicKey=b64encode(b"\x00" * 31))
        _invalid(p.KEY_REGISTRATION, subjectType="robot")
        urlsafe = VALID[p.KEY_REGISTRATION]["publicKey"].replace("+", "-").replace("/", "_")
        if urlsafe != VALID[p.KEY_REGISTRATION]["publicKey"]:
            _invalid(p.KEY_REGISTRATION, publicKey=urlsafe)

    def test_key_registration_matches_what_log_init_logs(self) -> None:
        # The shape deletion_audit.log.identity logs for the log key.
        event = {
            "keyId": keys.key_id(KEY), "publicKey": b64encode(keys.raw_public(KEY)),
            "subjectType": "log", "subjectId": "log.example.org",
            "registeredAt": T0, "noteVerifierKey": "log.example.org+01020304+AQID",
        }
        model = p.parse_predicate(_ours(p.KEY_REGISTRATION, event))
        assert model is not None
        assert model.to_predicate() == event

    def test_verdict_outcomes(self) -> None:
        _invalid(p.VERDICT, outcome="ok")
        _invalid(p.VERDICT, version=0)

    def test_models_are_immutable(self) -> None:
        model = p.parse_predicate(_ours(p.VERDICT, VALID[p.VERDICT]))
        assert isinstance(model, p.VerdictPredicate)
        with pytest.raises(ValueError, match="frozen"):
            model.version = 4  # type: ignore[misc]

    def test_python_construction_by_field_name(self) -> None:
        judgment = p.JudgmentPredicate(
            case_id="case-1", finding="overdue", judged_at=datetime(2026, 3, 2, tzinfo=UTC)
        )
        assert judgment.to_predicate() == {
            "caseId": "case-1", "finding": "overdue", "judgedAt": "2026-03-02T00:00:00Z",
        }
