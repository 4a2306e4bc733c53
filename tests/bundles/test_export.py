"""Export: what each tier holds, and what the public tier never holds."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta

from deletion_audit.bundles import layout
from deletion_audit.bundles.layout import Tier
from deletion_audit.bundles.verify import Exit
from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64decode
from deletion_audit.core.leaves import Leaf, decode_leaf
from tests.bundles.conftest import Bundles, codes, deleted_and_clean, jsonl, read_member
from tests.support.statements import Signer, data_flow


def leaf_of(line: dict[str, object]) -> Leaf:
    return decode_leaf(b64decode(str(line["leaf"])))


class TestCourtBundle:
    def test_a_verified_case_verifies_and_its_verdict_is_rederived(
            self, bundles: Bundles) -> None:
        deleted_and_clean(bundles.case)
        report = bundles.verify(bundles.export(Tier.COURT))
        assert report.problems == []
        assert report.exit is Exit.VERIFIED
        assert report.rederive_ran
        assert report.rederived is not None
        assert report.verdict is not None
        assert report.rederived["outcome"] == report.verdict["outcome"] == "verified"
        assert report.counts["items"] == 6
        assert report.counts["envelopes"] == 3  # two scans and a deletion

    def test_holds_the_manifest_every_envelope_and_opened_events(
            self, bundles: Bundles) -> None:
        deleted_and_clean(bundles.case)
        path = bundles.export(Tier.COURT)
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
        assert {layout.INDEX, layout.CHECKPOINT, layout.EVENTS, layout.KEYS,
                layout.MANIFEST, layout.MANIFEST_ENVELOPE, layout.VERDICT} <= names
        assert len([n for n in names if n.startswith(layout.ENVELOPES)]) == 3
        manifest = read_member(path, layout.MANIFEST)
        assert all(d.encode() in manifest for d in bundles.case.digests)
        lines = jsonl(read_member(path, layout.EVENTS))
        restricted = [line for line in lines if leaf_of(line).commitment is not None]
        assert restricted
        assert all("body" in line and "salt" in line for line in restricted)

    def test_a_case_with_leftovers_is_intact_but_not_verified(self, bundles: Bundles) -> None:
        bundles.case.scan(present=bundles.case.digests[:1])
        report = bundles.verify(bundles.export(Tier.COURT))
        assert report.problems == []
        assert report.exit is Exit.NOT_VERIFIED
        assert report.verdict is not None
        assert report.verdict["outcome"] == "not_verified"

    def test_every_included_event_is_covered_by_its_checkpoint(
            self, bundles: Bundles) -> None:
        deleted_and_clean(bundles.case)
        path = bundles.export(Tier.COURT)
        size = int(read_member(path, layout.CHECKPOINT).decode().split("\n")[1])
        for name in (layout.EVENTS, layout.KEYS):
            assert all(int(str(line["index"])) < size
                       for line in jsonl(read_member(path, name)))

    def test_the_index_is_signed_by_the_service_key_and_lists_every_other_file(
            self, bundles: Bundles) -> None:
        deleted_and_clean(bundles.case)
        path = bundles.export(Tier.COURT)
        envelope = dsse.Envelope.from_json(read_member(path, layout.INDEX))
        verified = dsse.verify(envelope, [bundles.env.ctx.keys.service_key.public_key()])
        index = layout.parse_index(verified.payload)
        with zipfile.ZipFile(path) as zf:
            assert {f.path for f in index.files} == set(zf.namelist()) - {layout.INDEX}


class TestPublicBundle:
    def test_verifies_with_counts_and_the_signed_verdict(self, bundles: Bundles) -> None:
        deleted_and_clean(bundles.case)
        report = bundles.verify(bundles.export(Tier.PUBLIC))
        assert report.problems == []
        assert report.exit is Exit.VERIFIED
        assert not report.rederive_ran
        assert report.counts["summaries"] == 2

    def test_holds_no_digest_pseudonym_or_location(self, bundles: Bundles) -> None:
        deleted_and_clean(bundles.case)
        path = bundles.export(Tier.PUBLIC)
        raw = path.read_bytes()
        with zipfile.ZipFile(path) as zf:
            contents = b"".join(zf.read(n) for n in zf.namelist())
        entries = bundles.case.entries
        secrets = {e.digest for e in entries} | {e.subject for e in entries if e.subject} \
            | {e.source for e in entries if e.source}
        for secret in secrets:
            for blob in (raw, contents):
                assert secret.encode() not in blob, secret
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
        assert layout.MANIFEST not in names
        assert not any(n.startswith(layout.ENVELOPES) for n in names)

    def test_restricted_events_are_only_their_commitments(self, bundles: Bundles) -> None:
        deleted_and_clean(bundles.case)
        lines = jsonl(read_member(bundles.export(Tier.PUBLIC), layout.EVENTS))
        assert lines
        assert all("body" not in line and "salt" not in line for line in lines)

    def test_a_public_bundle_that_opens_a_restricted_event_is_refused(
            self, bundles: Bundles) -> None:
        deleted_and_clean(bundles.case)
        court = read_member(bundles.export(Tier.COURT), layout.EVENTS)
        tampered = bundles.tamper(
            bundles.export(Tier.PUBLIC),
            change=lambda n, d: court if n == layout.EVENTS else d, resign=True)
        report = bundles.verify(tampered)
        assert report.exit is Exit.FAILED
        assert "disclosure" in codes(report)


class TestSummaries:
    def test_one_signed_summary_per_finished_scan(self, bundles: Bundles) -> None:
        deleted_and_clean(bundles.case)
        path = bundles.export(Tier.PUBLIC)
        with zipfile.ZipFile(path) as zf:
            summaries = [n for n in zf.namelist() if n.startswith(layout.SUMMARIES)]
            assert len(summaries) == 2
            for name in summaries:
                envelope = dsse.Envelope.from_json(zf.read(name))
                dsse.verify(envelope, [bundles.env.ctx.keys.service_key.public_key()])
                payload = envelope.payload
                assert all(d.encode() not in payload for d in bundles.case.digests)

    def test_a_second_export_issues_no_second_summary(self, bundles: Bundles) -> None:
        deleted_and_clean(bundles.case)
        bundles.export(Tier.PUBLIC)
        path = bundles.export(Tier.PUBLIC, name="again.zip")
        events = jsonl(read_member(path, layout.EVENTS))
        kinds = [leaf_of(e).type for e in events]
        assert kinds.count("summary") == 2


class TestRevokedAgents:
    def test_a_decommissioned_agent_flushing_its_outbox(self, bundles: Bundles) -> None:
        """Statements ingest accepted after a decommissioning (the grace period) are
        evidence: the revocation is bundled and the bundle verifies."""
        case = bundles.case
        case.scan(present=case.digests[:1])
        r = case.client.post(f"{case.world.url}/agents/{case.agent.agent_id}/revoke",
                             headers=case.world.prosecutor.headers,
                             json={"kind": "decommissioned", "reason": "主机报废"})
        assert r.status_code == 200, r.text
        case.env.clock.advance(timedelta(minutes=5))
        case.delete(case.digests[:1], minutes=-10)  # made before, sent after the revocation
        report = bundles.verify(bundles.export(Tier.COURT))
        assert report.problems == []
        assert report.counts["revocations"] == 1
        assert report.exit is Exit.NOT_VERIFIED


class TestPeoplesStatements:
    def test_a_vendors_statement_and_its_key_travel_in_the_bundle(
            self, bundles: Bundles) -> None:
        """A statement signed by a person names their key: the bundle carries the key's
        registration and verify checks the signature with it."""
        case = bundles.case
        deleted_and_clean(case)
        flow = data_flow(case.client, case.world)
        vendor = Signer.register(case.client, case.world["vendor-officer"])
        signed = vendor.sign(vendor.vendor(case.world, flow_id=flow,
                                           stated_at=case.env.clock.now()))
        assert vendor.submit(signed).status_code == 201
        path = bundles.export(Tier.COURT)
        keys_logged = [json.loads(b64decode(str(line["leaf"])))["event"]["keyId"]
                       for line in jsonl(read_member(path, layout.KEYS))]
        assert vendor.key_id in keys_logged
        report = bundles.verify(path)
        assert report.problems == []
        assert report.counts["envelopes"] == 4
        # The vendor's envelope signed by another key: caught.
        forged = dsse.sign(dsse.Envelope.from_json(signed.envelope).payload,
                           dsse.IN_TOTO_PAYLOAD_TYPE, keys.generate()).to_json()
        name = layout.envelope_path(layout.sha256_hex(signed.envelope))
        tampered = bundles.tamper(path, change=lambda n, d: forged if n == name else d,
                                  resign=True)
        assert "envelope" in codes(bundles.verify(tampered))
