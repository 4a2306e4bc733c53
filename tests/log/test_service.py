"""The log over both engines: append with the event, integrate, prove, detect tampering."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from deletion_audit.core import merkle
from deletion_audit.core.checkpoint import open_checkpoint
from deletion_audit.core.leaves import Disclosure, decode_leaf, opens
from deletion_audit.errors import BadRequest, StartupRefused
from deletion_audit.log import service
from deletion_audit.log.identity import check_not_rolled_back, load_keys
from deletion_audit.log.verify import verify_log
from deletion_audit.models import Event, LogCheckpoint, LogLeaf, LogNode, LogState
from tests.conftest import T0
from tests.support.log import LogEnv


def _append(env: LogEnv, n: int, event_type: str = "attestation") -> list[bytes]:
    hashes = []
    with env.db.write() as session:
        for i in range(n):
            appended = service.append_event(
                session, event_type=event_type,
                event={"n": i, "digest": f"{i:064x}"}, now=env.clock.now(),
            )
            hashes.append(appended.leaf_hash)
    return hashes


def _all_leaf_data(env: LogEnv) -> list[bytes]:
    with env.db.read() as session:
        return [d for _, _, d in service.iter_integrated(session)]


class TestInit:
    def test_init_logs_both_key_registrations_and_signs_a_checkpoint(self, env: LogEnv) -> None:
        with env.db.read() as session:
            cp = service.latest_checkpoint(session)
            leaves = [decode_leaf(d) for _, _, d in service.iter_integrated(session)]
        assert cp is not None
        opened = open_checkpoint(cp.note, env.ctx.keys.verifier)
        assert opened.size == 2
        assert [leaf.type for leaf in leaves] == ["key-registration", "key-registration"]
        subjects = {leaf.event["subjectType"] for leaf in leaves if leaf.event}
        assert subjects == {"log", "service"}

    def test_key_files_are_private(self, env: LogEnv) -> None:
        for path in (env.settings.log_key_path, env.settings.service_key_path):
            assert path.stat().st_mode & 0o777 == 0o600

    def test_init_runs_once(self, env: LogEnv) -> None:
        from deletion_audit.log.identity import init_log

        with pytest.raises(StartupRefused, match="runs once"), env.db.write() as session:
            init_log(session, settings=env.settings, now=env.clock.now())


class TestAppend:
    def test_restricted_event_is_a_salted_commitment(self, env: LogEnv) -> None:
        [leaf_hash] = _append(env, 1)
        with env.db.read() as session:
            row = session.execute(select(Event).where(Event.leaf_hash == leaf_hash)).scalar_one()
            leaf = service.leaf_by_hash(session, leaf_hash)
        decoded = decode_leaf(leaf.data)
        assert decoded.disclosure is Disclosure.RESTRICTED
        assert b"digest" not in leaf.data
        assert f"{0:064x}".encode() not in leaf.data
        assert row.salt is not None
        assert opens(decoded, row.body, row.salt)
        assert not opens(decoded, {**row.body, "n": 1}, row.salt)

    def test_a_failed_transaction_leaves_neither_event_nor_leaf(self, env: LogEnv) -> None:
        class Boom(Exception):
            pass

        def append_then_fail() -> None:
            with env.db.write() as session:
                service.append_event(session, event_type="case", event={"x": 1}, now=T0)
                raise Boom

        with pytest.raises(Boom):
            append_then_fail()
        with env.db.read() as session:
            assert session.execute(select(LogLeaf).where(LogLeaf.idx.is_(None))).first() is None
            assert session.execute(select(Event).where(Event.type == "case")).first() is None

    def test_leaf_is_unknown_until_integrated(self, env: LogEnv) -> None:
        [leaf_hash] = _append(env, 1)
        with env.db.read() as session:
            assert service.leaf_by_hash(session, leaf_hash).idx is None
        env.integrate()
        with env.db.read() as session:
            assert service.leaf_by_hash(session, leaf_hash).idx == 2


class TestIntegrate:
    def test_root_and_every_proof_match_a_reference_tree(self, env: LogEnv) -> None:
        _append(env, 37)
        assert env.integrate() == 37
        data = _all_leaf_data(env)
        reference = merkle.MemoryTree()
        for d in data:
            reference.append(merkle.leaf_hash(d))
        with env.db.read() as session:
            cp = service.latest_checkpoint(session)
            assert cp is not None
            assert cp.size == 39
            assert cp.root == reference.root()
            for index in range(39):
                proof = service.inclusion_proof(session, index=index, size=39)
                merkle.verify_inclusion(merkle.leaf_hash(data[index]), index, 39, proof, cp.root)
            for first in range(1, 40):
                proof = service.consistency_proof(session, first=first, second=39)
                merkle.verify_consistency(first, 39, proof, reference.root(first), cp.root)

    def test_every_signed_checkpoint_is_kept_and_consistent(self, env: LogEnv) -> None:
        for n in (3, 1, 8):
            _append(env, n)
            env.integrate()
        with env.db.read() as session:
            query = select(LogCheckpoint).order_by(LogCheckpoint.size)
            cps = session.execute(query).scalars().all()
            assert [c.size for c in cps] == [2, 5, 6, 14]
            last = cps[-1]
            for cp in cps[:-1]:
                proof = service.consistency_proof(session, first=cp.size, second=last.size)
                merkle.verify_consistency(cp.size, last.size, proof, cp.root, last.root)

    def test_batches_give_the_same_tree(self, env: LogEnv) -> None:
        _append(env, 25)
        env.settings.integrate_batch = 4
        assert env.integrate() == 25
        with env.db.read() as session:
            cp = service.latest_checkpoint(session)
        assert cp is not None
        assert cp.size == 27
        assert cp.root == merkle.root_from_leaf_hashes(
            [merkle.leaf_hash(d) for d in _all_leaf_data(env)]
        )

    def test_concurrent_integrators_never_assign_an_index_twice(self, env: LogEnv) -> None:
        _append(env, 300)
        env.settings.integrate_batch = 7
        errors: list[BaseException] = []

        def work() -> None:
            try:
                env.integrate()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with env.db.read() as session:
            idxs = session.execute(select(LogLeaf.idx).order_by(LogLeaf.idx)).scalars().all()
            assert idxs == list(range(302))
            assert verify_log(session).ok

    def test_proof_requests_beyond_the_tree_are_refused(self, env: LogEnv) -> None:
        with env.db.read() as session:
            with pytest.raises(BadRequest, match="beyond"):
                service.inclusion_proof(session, index=0, size=3)
            with pytest.raises(BadRequest, match="outside"):
                service.inclusion_proof(session, index=2, size=2)
            with pytest.raises(BadRequest, match="first <= second"):
                service.consistency_proof(session, first=2, second=1)


def _forge_leaf(session: Session, index: int, data: bytes) -> None:
    """What someone with write access to the database would do: replace a leaf outright."""
    session.execute(delete(Event).where(Event.leaf_hash.in_(
        select(LogLeaf.leaf_hash).where(LogLeaf.idx == index))))
    session.execute(update(LogLeaf).where(LogLeaf.idx == index)
                    .values(data=data, leaf_hash=merkle.leaf_hash(data)))


class TestVerifyLog:
    def test_intact_log_verifies(self, env: LogEnv) -> None:
        _append(env, 20)
        env.integrate()
        with env.db.read() as session:
            report = verify_log(session)
        assert report.ok, report.problems
        assert report.size == 22
        assert report.checkpoints == 2

    def test_altered_leaf_data_is_named_by_index(self, env: LogEnv) -> None:
        _append(env, 20)
        env.integrate()
        with env.db.write() as session:
            session.execute(update(LogLeaf).where(LogLeaf.idx == 13).values(data=b"{}"))
        with env.db.read() as session:
            report = verify_log(session)
        assert not report.ok
        assert report.first_bad_index == 13

    def test_altered_leaf_and_its_hash_is_caught_by_the_stored_nodes(self, env: LogEnv) -> None:
        _append(env, 20)
        env.integrate()
        forged = b'{"forged":true}'
        with env.db.write() as session:
            _forge_leaf(session, 9, forged)
        with env.db.read() as session:
            report = verify_log(session)
        assert report.first_bad_index == 9

    def test_removed_row_is_named(self, env: LogEnv) -> None:
        _append(env, 20)
        env.integrate()
        with env.db.write() as session:
            session.execute(delete(Event).where(Event.leaf_hash.in_(
                select(LogLeaf.leaf_hash).where(LogLeaf.idx == 4))))
            session.execute(delete(LogLeaf).where(LogLeaf.idx == 4))
        with env.db.read() as session:
            report = verify_log(session)
        assert report.first_bad_index == 4
        assert "missing" in report.problems[0]

    def test_rewritten_history_fails_the_checkpoints(self, env: LogEnv) -> None:
        _append(env, 5)
        env.integrate()
        forged = b'{"forged":true}'
        forged_hash = merkle.leaf_hash(forged)
        with env.db.write() as session:
            _forge_leaf(session, 3, forged)
            session.execute(update(LogNode).where(LogNode.level == 0, LogNode.idx == 3)
                            .values(hash=forged_hash))
        with env.db.read() as session:
            report = verify_log(session)
        assert not report.ok
        assert report.first_bad_index is not None
        assert report.first_bad_index <= 6


class TestStartupChecks:
    def test_a_foreign_log_key_refuses_to_start(self, env: LogEnv) -> None:
        from deletion_audit.core import keys

        env.settings.log_key_path.unlink()
        keys.save_private_key(env.settings.log_key_path, keys.generate())
        with pytest.raises(StartupRefused, match="not this database's log key"), \
                env.db.read() as session:
            load_keys(session, env.settings)

    def test_a_restored_older_database_refuses_to_start(self, env: LogEnv) -> None:
        _append(env, 6)
        env.integrate()
        assert env.settings.checkpoint_path.exists()
        # What a restore of a backup taken at size 2 looks like.
        with env.db.write() as session:
            session.execute(update(LogLeaf).where(LogLeaf.idx >= 2).values(idx=None))
            session.execute(delete(LogNode).where(LogNode.idx >= 0, LogNode.level == 0,
                                                  LogNode.idx >= 2))
            session.execute(delete(LogCheckpoint).where(LogCheckpoint.size > 2))
            session.execute(update(LogState).values(size=2))
        with env.db.read() as session, pytest.raises(StartupRefused, match="fork"):
            check_not_rolled_back(session, keys_=env.ctx.keys,
                                  checkpoint_path=env.settings.checkpoint_path)

    def test_a_checkpoint_file_of_another_log_refuses_to_start(self, env: LogEnv) -> None:
        env.settings.checkpoint_path.write_text("not a checkpoint\n")
        with env.db.read() as session, pytest.raises(StartupRefused, match="not a checkpoint"):
            check_not_rolled_back(session, keys_=env.ctx.keys,
                                  checkpoint_path=env.settings.checkpoint_path)
