"""The verdict reads people's statements: a data flow covered by its vendor party's
statement made after the last deletion (and not without one), custody and de-identification
moving their obligations — over HTTP, on both engines."""

from __future__ import annotations

from datetime import timedelta

from deletion_audit.models import PartyRole
from tests.support.statements import (
    Signer,
    custody_obligation,
    data_flow,
    deidentify_obligation,
)
from tests.verdicts.conftest import Case, reasons


def _clean(case: Case) -> None:
    case.scan(present=case.digests[:1])
    case.delete(case.digests[:1], minutes=1)
    case.scan(minutes=2)


def _flow(case: Case, flow_id: int) -> dict[str, object]:
    flows = {f["id"]: f for f in case.verdict()["report"]["data_flows"]}
    flow: dict[str, object] = flows[flow_id]
    return flow


class TestVendorStatements:
    def test_a_flow_only_a_vendor_could_cover_is_uncovered_without_a_statement(
        self, case: Case
    ) -> None:
        _clean(case)
        flow = data_flow(case.client, case.world)
        verdict = case.verdict()
        assert verdict["outcome"] == "insufficient_evidence"
        assert reasons(verdict) == {"data_flow_not_covered"}
        assert _flow(case, flow)["covered"] is False

    def test_a_deleted_statement_after_the_last_deletion_covers_the_flow(
        self, case: Case
    ) -> None:
        _clean(case)
        flow = data_flow(case.client, case.world)
        vendor = Signer.register(case.client, case.world["vendor-officer"])
        r = vendor.submit(vendor.sign(vendor.vendor(
            case.world, flow_id=flow, stated_at=case.env.clock.now() + timedelta(minutes=3))))
        assert r.status_code == 201, r.text
        verdict = case.verdict()
        assert verdict["outcome"] == "verified", verdict["report"]["reasons"]
        assert (_flow(case, flow)["covered"], _flow(case, flow)["covered_by"]) == (
            True, "vendor_statement")

    def test_not_received_covers_too(self, case: Case) -> None:
        _clean(case)
        flow = data_flow(case.client, case.world)
        vendor = Signer.register(case.client, case.world["vendor-officer"])
        assert vendor.submit(vendor.sign(vendor.vendor(
            case.world, flow_id=flow, status="not-received",
            stated_at=case.env.clock.now() + timedelta(minutes=3)))).status_code == 201
        assert case.verdict()["outcome"] == "verified"

    def test_a_statement_made_before_the_last_deletion_does_not(self, case: Case) -> None:
        flow = data_flow(case.client, case.world)
        vendor = Signer.register(case.client, case.world["vendor-officer"])
        assert vendor.submit(vendor.sign(vendor.vendor(
            case.world, flow_id=flow, stated_at=case.env.clock.now()))).status_code == 201
        _clean(case)  # its deletion is a minute later than the vendor's statement
        verdict = case.verdict()
        assert reasons(verdict) == {"data_flow_not_covered"}
        assert _flow(case, flow)["covered"] is False

    def test_a_statement_signed_by_a_key_revoked_as_compromised_stops_counting(
        self, case: Case
    ) -> None:
        _clean(case)
        flow = data_flow(case.client, case.world)
        vendor = Signer.register(case.client, case.world["vendor-officer"])
        assert vendor.submit(vendor.sign(vendor.vendor(
            case.world, flow_id=flow,
            stated_at=case.env.clock.now() + timedelta(minutes=3)))).status_code == 201
        assert case.verdict()["outcome"] == "verified"
        r = case.client.delete(f"/api/v1/users/me/keys/{vendor.key_id}",
                               headers=vendor.person.headers, params={"reason": "compromised"})
        assert r.status_code == 200, r.text
        # The revocation alone asks for a new verdict.
        assert case.recompute() == [case.world.case_id]
        verdict = case.verdict(recompute=False)
        assert reasons(verdict) == {"data_flow_not_covered"}

    def test_retained_under_custody_covers_only_with_a_custody_obligation(
        self, case: Case
    ) -> None:
        _clean(case)
        flow = data_flow(case.client, case.world)
        vendor = Signer.register(case.client, case.world["vendor-officer"])
        assert vendor.submit(vendor.sign(vendor.vendor(
            case.world, flow_id=flow, status="retained-under-custody",
            stated_at=case.env.clock.now() + timedelta(minutes=3)))).status_code == 201
        assert reasons(case.verdict()) == {"data_flow_not_covered"}
        custody_obligation(case.client, case.world,
                           custodian=case.world.parties[PartyRole.VENDOR])
        verdict = case.verdict()
        assert verdict["outcome"] == "verified", verdict["report"]["reasons"]
        assert _flow(case, flow)["covered_by"] == "vendor_statement"


class TestObligationStatements:
    def test_a_failed_deidentification_check_is_a_breach(self, case: Case) -> None:
        _clean(case)
        oid = deidentify_obligation(case.client, case.world)
        assert case.verdict()["outcome"] == "verified"
        examiner = Signer.register(case.client, case.world.examiner)
        assert examiner.submit(examiner.sign(examiner.deidentify(
            case.world, checked_at=case.env.clock.now(), result="fail"))).status_code == 201
        verdict = case.verdict()
        assert verdict["outcome"] == "not_verified"
        assert reasons(verdict) == {"obligation_breached"}
        [obligation] = verdict["report"]["obligations"]
        assert (obligation["id"], obligation["state"], obligation["blocking"]) == (
            oid, "breached", True)

    def test_a_destroyed_backup_fulfils_its_custody_obligation(self, case: Case) -> None:
        _clean(case)
        oid = custody_obligation(case.client, case.world)
        custodian = Signer.register(case.client, case.world["custodian-officer"])
        assert custodian.submit(custodian.sign(custodian.custody(
            case.world, obligation_id=oid,
            occurred_at=case.env.clock.now()))).status_code == 201
        [obligation] = case.verdict()["report"]["obligations"]
        assert (obligation["state"], obligation["fulfilled"]) == ("discharged", True)
