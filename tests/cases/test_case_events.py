"""Case facts are logged as restricted events that open with their salts; account
details never reach the log."""

from __future__ import annotations

import json

from sqlalchemy import select

from deletion_audit.core.leaves import Disclosure, decode_leaf, opens
from deletion_audit.models import Event, LogLeaf
from tests.support.log import LogEnv
from tests.support.world import World


class TestCaseEvents:
    def test_world_logs_case_parties_and_members_restricted(
        self, env: LogEnv, world: World
    ) -> None:
        with env.db.read() as session:
            rows = session.execute(
                select(Event, LogLeaf).join(LogLeaf, LogLeaf.leaf_hash == Event.leaf_hash)
                .where(Event.type != "key-registration").order_by(Event.id)
            ).all()
        types = [event.type for event, _ in rows]
        assert types[0] == "case"
        assert types.count("party") == 7
        assert types.count("membership") == 8
        for event, leaf_row in rows:
            leaf = decode_leaf(leaf_row.data)
            assert leaf.disclosure is Disclosure.RESTRICTED
            assert event.salt is not None
            assert opens(leaf, event.body, event.salt)
            # Names of people and organisations stay out of the public leaf.
            assert b"prosecutor" not in leaf_row.data
        case_event = rows[0][0].body
        assert case_event["caseNumber"] == world.case_number
        assert case_event["at"] == "2026-03-02T01:30:00Z"

    def test_no_account_detail_reaches_the_log(self, env: LogEnv, world: World) -> None:
        with env.db.read() as session:
            bodies = session.execute(select(Event.body)).scalars().all()
        text = json.dumps(bodies, ensure_ascii=False)
        assert "dapat_" not in text
        assert "tok_" not in text
        assert world.prosecutor.token not in text
