"""``enroll``: check the server's log key against the token before trusting anything, make
the agent's key (0600, O_EXCL), register it with the host's facts (agents/PROTOCOL.md,
"Enrollment")."""

from __future__ import annotations

import hashlib
import platform
import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deletion_audit.core import keys
from deletion_audit.core.b64 import b64encode
from deletion_audit_agent import __version__
from deletion_audit_agent.build import build_digest
from deletion_audit_agent.client import API, AgentClient, Backoff, check_server_url
from deletion_audit_agent.monitor import observe
from deletion_audit_agent.state import Enrollment, State

KEY_FILE = "agent.key"
_TOKEN = re.compile(r"^(?P<secret>[A-Za-z0-9_-]{16,256})\.(?P<fingerprint>[0-9a-f]{16})$")


class EnrollError(Exception):
    pass


def fingerprint(vkey: str) -> str:
    """First 16 hex digits of SHA-256 of the log's verifier key string."""
    return hashlib.sha256(vkey.encode("utf-8")).hexdigest()[:16]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def host_facts() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "machine_id": _read("/etc/machine-id"),
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
    }


def _agent_key(state_dir: Path) -> Ed25519PrivateKey:
    path = state_dir / KEY_FILE
    if path.exists():
        # Left by an enrollment that died before the server answered: the key was never
        # registered, so reusing it is safe and keeps a retry from failing on O_EXCL.
        return keys.load_private_key(path)
    key = keys.generate()
    keys.save_private_key(path, key)
    return key


def enroll(state: State, *, server: str, token: str, backoff: Backoff | None = None
           ) -> Enrollment:
    server = check_server_url(server)
    if state.enrollment is not None:
        raise EnrollError(f"this state directory is already enrolled as "
                          f"{state.enrollment.agent_id}; a reinstalled host enrolls with a new "
                          "state directory and a new token")
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        raise EnrollError("the token must look like <secret>.<16 hex digits>, as issued")
    with AgentClient(server, backoff=backoff) as client:
        vkey = client.request("GET", API + "/log/key").text.rstrip("\n")
        if fingerprint(vkey) != match["fingerprint"]:
            raise EnrollError(
                f"the server's log key (fingerprint {fingerprint(vkey)}) is not the one this "
                f"token was issued for ({match['fingerprint']}): refusing to trust {server}")
        key = _agent_key(state.dir)
        body = client.post_json("/agents/enroll", {
            "token": token.strip(),
            "public_key": b64encode(keys.raw_public(key)),
            "host": host_facts(),
            "build_digest": build_digest(),
            "agent_version": __version__,
        })
        enrollment = Enrollment(
            agent_id=str(body["agent_id"]), server=server, key_path=str(state.dir / KEY_FILE),
            log_key=vkey, case_id=str(body["case_id"]), party_role=body.get("party_role"),
            heartbeat_seconds=int(body.get("heartbeat_seconds", 60)))
        state.save_enrollment(enrollment)
        state.put("scopes", body.get("scopes", []))
        if body.get("checkpoint"):
            observe(state, client, body["checkpoint"], vkey)
        state.put("last_contact", body.get("server_time"))
    return enrollment
