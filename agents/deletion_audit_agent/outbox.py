"""Sending the outbox: in sequence order, each statement until a 201 (or the same answer
again: the server answers a statement id it has seen with its original outcome, so a 201
lost to a crash or a cut is simply asked for again and nothing is counted twice)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from deletion_audit.core.predicates import format_timestamp
from deletion_audit_agent.client import API, AgentClient, ClientError, Refused
from deletion_audit_agent.state import State

# Refusals of the request rather than of the statement: the statement stays in the outbox
# (a clock fixed, a re-enrollment, an operator's look), never in the dead letters.
_NOT_THE_STATEMENT = {401}


@dataclass(frozen=True)
class FlushResult:
    sent: int
    dead: int
    pending: int
    error: str | None = None


def _now() -> str:
    return format_timestamp(datetime.now(UTC).replace(microsecond=0))


def flush(state: State, client: AgentClient) -> FlushResult:
    sent = dead = 0
    items = state.outbox()
    for position, item in enumerate(items):
        try:
            response = client.request("POST", API + "/attestations", raw=item.envelope,
                                      content_type="application/json", expect=(200, 201))
        except Refused as refusal:
            if refusal.status in _NOT_THE_STATEMENT:
                state.mark_failed_attempt(item, str(refusal))
                return FlushResult(sent, dead, len(items) - position, str(refusal))
            state.dead_letter(item, refusal.status, refusal.code, refusal.message, _now())
            dead += 1
            continue
        except ClientError as exc:
            state.mark_failed_attempt(item, str(exc))
            return FlushResult(sent, dead, len(items) - position, str(exc))
        state.mark_sent(item, response.json())
        sent += 1
    return FlushResult(sent, dead, 0)
