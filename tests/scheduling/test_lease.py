"""The scheduler's lease on both engines: one holder at a time, renewals, a takeover once
it lapses, a release that hands over at once."""

from __future__ import annotations

from datetime import timedelta

from deletion_audit.models import SchedulerLease
from deletion_audit.scheduling import lease
from tests.conftest import T0
from tests.support.log import LogEnv

TTL = timedelta(seconds=15)


class TestLease:
    def test_the_first_holder_leads_and_renews(self, env: LogEnv) -> None:
        assert lease.acquire(env.db, holder="a", now=T0, ttl=TTL)
        assert lease.acquire(env.db, holder="a", now=T0 + timedelta(seconds=5), ttl=TTL)
        assert lease.current_holder(env.db, now=T0 + timedelta(seconds=19)) == "a"
        with env.db.read() as session:
            assert session.get_one(SchedulerLease, lease.LEASE_NAME).acquired_at == T0

    def test_a_standby_waits_while_the_lease_holds(self, env: LogEnv) -> None:
        assert lease.acquire(env.db, holder="a", now=T0, ttl=TTL)
        assert not lease.acquire(env.db, holder="b", now=T0 + timedelta(seconds=14), ttl=TTL)
        assert lease.current_holder(env.db, now=T0 + timedelta(seconds=14)) == "a"

    def test_a_standby_takes_over_a_lapsed_lease(self, env: LogEnv) -> None:
        assert lease.acquire(env.db, holder="a", now=T0, ttl=TTL)
        assert lease.acquire(env.db, holder="b", now=T0 + TTL, ttl=TTL)
        # The old leader comes back: it no longer leads.
        assert not lease.acquire(env.db, holder="a", now=T0 + TTL + timedelta(seconds=1),
                                 ttl=TTL)
        assert lease.current_holder(env.db, now=T0 + TTL) == "b"
        with env.db.read() as session:
            row = session.get_one(SchedulerLease, lease.LEASE_NAME)
        assert (row.acquired_at, row.expires_at) == (T0 + TTL, T0 + 2 * TTL)

    def test_a_release_hands_over_at_once(self, env: LogEnv) -> None:
        assert lease.acquire(env.db, holder="a", now=T0, ttl=TTL)
        lease.release(env.db, holder="a", now=T0 + timedelta(seconds=1))
        assert lease.current_holder(env.db, now=T0 + timedelta(seconds=1)) is None
        assert lease.acquire(env.db, holder="b", now=T0 + timedelta(seconds=1), ttl=TTL)

    def test_a_release_by_another_changes_nothing(self, env: LogEnv) -> None:
        assert lease.acquire(env.db, holder="a", now=T0, ttl=TTL)
        lease.release(env.db, holder="b", now=T0 + timedelta(seconds=1))
        assert lease.current_holder(env.db, now=T0 + timedelta(seconds=1)) == "a"
