"""Real agent processes: one scanning a directory under a retention rule (told the scope
reports ages, its scan carries the summary from the files' mtimes, and the server finds
the image kept beyond 24 h — the obligation breached), one re-hashing a sealed container
whose content changed after sealing (custody breached)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from deletion_audit.core import dsse
from deletion_audit.core.predicates import ScanPredicate, parse_predicate
from deletion_audit.core.statements import parse_statement
from deletion_audit.models import Attestation, Obligation, PartyRole
from tests.support.agent_e2e import Setup, agent, issue_token, setup, write_config
from tests.support.statements import Signer

__all__ = ["setup"]  # the fixture, for this module's tests


@pytest.mark.slow
def test_an_image_kept_too_long_breaches_the_rule(setup: Setup, tmp_path: Path) -> None:
    cams, _ = setup.scope_ids
    r = httpx.post(f"{setup.server.base}{setup.world.url}/obligations",
                   headers=setup.world.prosecutor.headers, json={
                       "kind": "retention", "title": "人脸图像 24 小时内删除",
                       "details": {"max_age_hours": 24, "kinds": ["image"],
                                   "scope_ids": [cams]}})
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    # One image written two days ago; the videos are as old, but the rule is about images.
    two_days_ago = time.time() - 48 * 3600
    for path in [setup.tree / "store-7" / "2024" / "f1.jpg",
                 setup.tree / "store-7" / "clips" / "f0.mp4"]:
        os.utime(path, (two_days_ago, two_days_ago))
    config = write_config(tmp_path / "agent.toml", setup, tmp_path / "state")
    agent(["enroll", "--token", issue_token(setup)], config, check=True)
    agent(["scan", "--json", "--scope", str(cams)], config, check=True)

    with setup.db.read() as session:
        envelopes = session.execute(select(Attestation.envelope).where(
            Attestation.scope_id == cams)).scalars().all()
        state = session.get_one(Obligation, oid).state
    (envelope,) = envelopes
    predicate = parse_predicate(parse_statement(dsse.Envelope.from_json(envelope).payload))
    assert isinstance(predicate, ScanPredicate)
    assert predicate.ages is not None
    summary = {k: (v.count, v.histogram) for k, v in predicate.ages.items()}
    assert summary == {"image": (3, {"under-1h": 2, "under-7d": 1}),
                       "video": (3, {"under-1h": 2, "under-7d": 1})}
    assert state == "breached"
    assert json.dumps(predicate.to_predicate()).count("f1.jpg") == 0  # no name leaves


@pytest.mark.slow
def test_a_sealed_container_changed_after_sealing_breaches_custody(
    setup: Setup, tmp_path: Path
) -> None:
    world, base = setup.world, setup.server.base
    container = tmp_path / "vault" / "tape-7.tar"
    container.parent.mkdir()
    container.write_bytes(b"sealed backup " * 1000)
    custodian = world["custodian-officer"]
    r = httpx.post(f"{base}{world.url}/scopes", headers=custodian.headers, json={
        "name": "tape-7", "kind": "sealed_container", "spec": {"path": str(container)}})
    assert r.status_code == 201, r.text
    scope_id = r.json()["id"]
    party = world.parties[PartyRole.CUSTODIAN]
    r = httpx.post(f"{base}{world.url}/obligations", headers=world.prosecutor.headers, json={
        "kind": "custody-until", "title": "备份封存，到期彻底删除",
        "details": {"medium": "tape-7", "scope_id": scope_id, "custodian_party_id": party},
        "deadline": {"start_event": "疫苗有效期届满", "served_on": "2027-03-02",
                     "amount": 10, "unit": "days"}})
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    with httpx.Client(base_url=base, timeout=30) as http:
        signer = Signer.register(http, custodian)
        sealed = signer.custody(world, obligation_id=oid, occurred_at=datetime.now(UTC),
                                action="sealed").model_copy(update={
            "container_digest": hashlib.sha256(container.read_bytes()).hexdigest()})
        assert signer.submit(signer.sign(sealed)).status_code == 201
    r = httpx.post(f"{base}{world.url}/enrollment-tokens", headers=world.prosecutor.headers,
                   json={"scope_ids": [scope_id], "party_id": party})
    assert r.status_code == 201, r.text
    config = tmp_path / "agent.toml"
    config.write_text(f'server = "{setup.proxy.base}"\nstate_dir = "{tmp_path / "state"}"\n')
    agent(["enroll", "--token", r.json()["token"]], config, check=True)

    def rescan() -> str:
        out = json.loads(agent(["scan", "--json", "--scope", str(scope_id)], config,
                               check=True).stdout)["scans"]
        assert [(s["objects"], s["hashed"]) for s in out] == [(1, 1)]
        with setup.db.read() as session:
            return session.get_one(Obligation, oid).state

    assert rescan() == "in_force"
    with container.open("ab") as f:  # the seal was broken and something written
        f.write(b"!")
    assert rescan() == "breached"
