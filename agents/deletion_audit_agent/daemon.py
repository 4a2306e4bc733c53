"""``run``: heartbeat at the server's interval, run its tasks, keep the outbox flowing.

Nothing here gives up: an unreachable server, a 5xx or a refusal is logged and the loop goes
on at the next beat (each call already retried with capped, jittered backoff). Only a log
that is not consistent with what this agent saw stops it: that is a finding, not a fault.
Log lines are JSON, one per event, on standard error (journald keeps them).
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

from deletion_audit.core.errors import CoreError
from deletion_audit.core.predicates import format_timestamp
from deletion_audit_agent.agent import Agent, AgentError, utcnow
from deletion_audit_agent.client import Backoff, ClientError, Refused
from deletion_audit_agent.config import ConfigError
from deletion_audit_agent.enroll import enroll
from deletion_audit_agent.scanning import ProofCheckError
from deletion_audit_agent.state import State

_RECOVERABLE = (ClientError, Refused, AgentError, ConfigError, ProofCheckError, CoreError,
                OSError)


def log(event: str, **fields: Any) -> None:
    line = {"ts": format_timestamp(utcnow()), "event": event, **fields}
    sys.stderr.write(json.dumps(line, default=str) + "\n")
    sys.stderr.flush()


def run_task(agent: Agent, task: dict[str, Any]) -> None:
    scope_id = str(task.get("scope_id"))
    if task.get("kind") == "delete":
        if not agent.config.allow_remote_delete:
            log("task_refused", task=task.get("id"), scope=scope_id,
                reason="remote deletion is off (allow_remote_delete = false)")
            return
        scope = agent.scope(scope_id)
        found = agent.discover(scope)
        agent.delete(found)
        agent.attest_deletions({scope.key: scope})
        result = agent.scan(scope)
        log("task_done", task=task.get("id"), kind="delete", **result.summary())
        return
    if task.get("kind") == "scan":
        challenge = task.get("challenge") or {}
        result = agent.scan(agent.scope(scope_id), challenge=challenge.get("nonce"))
        log("task_done", task=task.get("id"), kind="scan", **result.summary())
        return
    log("task_unknown", task=task.get("id"), kind=task.get("kind"))


def cycle(agent: Agent) -> int:
    """One beat; returns the seconds to wait before the next."""
    interval = agent.enrollment.heartbeat_seconds
    beat: dict[str, Any] = {}
    try:
        beat = agent.heartbeat()
        interval = int(beat.get("heartbeat_seconds") or interval)
        if agent.state.pending_deletions() or agent.state.deletion_intents():
            agent.attest_deletions({s.key: s for s in agent.scopes()})
    except _RECOVERABLE as exc:
        log("contact_failed", error=str(exc))
    # The outbox goes out even when the heartbeat was refused: a decommissioned agent has
    # 24 hours to deliver what it made before its revocation (ingest judges, not us).
    try:
        result = agent.flush()
        log("heartbeat" if beat else "flush", tasks=beat.get("tasks", 0), sent=result.sent,
            dead=result.dead, outbox=result.pending, error=result.error)
    except _RECOVERABLE as exc:
        log("flush_failed", error=str(exc))
    if beat.get("tasks"):
        try:
            tasks = agent.tasks()
        except _RECOVERABLE as exc:
            log("tasks_failed", error=str(exc))
            tasks = []
        for task in tasks:
            try:
                run_task(agent, task)
            except _RECOVERABLE as exc:
                log("task_failed", task=task.get("id"), error=str(exc))
    return interval


def enroll_until_answered(state: State, *, server: str | None, token: str,
                          backoff: Backoff) -> None:
    """Enroll, retrying for as long as the server cannot be reached (a host often starts
    before the network or the server does). A refusal is final: a token that is wrong,
    spent or for another log will not become right by retrying."""
    if not server:
        raise ConfigError("`server` is not set in the configuration")
    attempt = 0
    while True:
        try:
            enrollment = enroll(state, server=server, token=token, backoff=backoff)
        except ClientError as exc:
            delay = max(backoff.base, backoff.delay(attempt))
            log("enroll_failed", error=str(exc), retry_in=round(delay, 2))
            time.sleep(delay)
            attempt = min(attempt + 1, 16)
            continue
        log("enrolled", agent=enrollment.agent_id, case=enrollment.case_id)
        return


def run_forever(agent: Agent, *, once: bool = False) -> None:
    log("started", agent=agent.enrollment.agent_id, server=agent.enrollment.server)
    while True:
        interval = cycle(agent)
        if once:
            return
        # Jitter: agents restarted together must not beat together forever.
        time.sleep(max(1.0, interval * random.uniform(0.9, 1.1)))  # noqa: S311
