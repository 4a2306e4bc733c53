"""A real agent process scanning a directory under a retention rule: it is told the scope
reports ages, its scan carries the summary from the files' mtimes, and the server finds
the image kept beyond 24 h — the obligation breached."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from deletion_audit.core import dsse
from deletion_audit.core.predicates import ScanPredicate, parse_predicate
from deletion_audit.core.statements import parse_statement
from deletion_audit.models import Attestation, Obligation
from tests.functional.test_agent_e2e import Setup, agent, issue_token, setup, write_config

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
