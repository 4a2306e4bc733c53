"""The case status machine: an explicit transition table, including the ways back."""

from __future__ import annotations

from collections.abc import Mapping

from deletion_audit.errors import Conflict, Unprocessable
from deletion_audit.models import CaseStatus

S = CaseStatus

TRANSITIONS: Mapping[CaseStatus, tuple[CaseStatus, ...]] = {
    S.OPEN: (S.REMEDIATING,),
    S.REMEDIATING: (S.VERIFYING,),
    # Verification found items still present: back to remediation.
    S.VERIFYING: (S.MONITORING, S.REMEDIATING),
    # A follow-up review (回头看) found data again: back to remediation.
    S.MONITORING: (S.CLOSED, S.REMEDIATING),
    # Reopening a closed case.
    S.CLOSED: (S.REMEDIATING,),
}

# Going back needs a reason, logged with the change: it is what a hearing will ask about.
BACKWARD: frozenset[tuple[CaseStatus, CaseStatus]] = frozenset({
    (S.VERIFYING, S.REMEDIATING), (S.MONITORING, S.REMEDIATING), (S.CLOSED, S.REMEDIATING),
})


def is_reopening(current: CaseStatus, target: CaseStatus) -> bool:
    return current is S.CLOSED and target is S.REMEDIATING


def check_transition(current: CaseStatus, target: CaseStatus, reason: str | None) -> None:
    allowed = TRANSITIONS[current]
    if target not in allowed:
        names = ", ".join(s.value for s in allowed)
        raise Conflict(
            f"the case is {current.value} and cannot become {target.value}; "
            f"allowed from {current.value}: {names}",
            allowed=[s.value for s in allowed],
        )
    if (current, target) in BACKWARD and not (reason and reason.strip()):
        raise Unprocessable(
            f"going back from {current.value} to {target.value} needs a reason"
        )
