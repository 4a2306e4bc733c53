"""CASES.md case 5 with real processes over 127.0.0.1: a ``deletion-audit serve`` process,
the vendor's and the examiner's ``deletion-audit-agent`` processes, and each signer's own
``deletion-audit keygen | key register | session sign`` runs.

The vendor's agent deletes remotely and reports clean — but it reads the main database,
while store 7's local copy still holds 3 face records. On site, the examiner's agent (enrolled
with a token scoped to the session) scans the store's copy and finds them; the session
closes ``findings``, signed by the prosecutor and two witnesses. The vendor deletes there
too; a second session closes ``clean`` and the scope becomes ``witnessed``; the court and
public bundles verify offline and show both sessions. Refused on the way: a
non-participant's signature, a second signature by the same key, signing after closure."""

from __future__ import annotations

import base64
import hashlib
import json
import platform
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from deletion_audit.core import dsse
from tests.functional.test_serve import CLI, Running, stop, wait_for
from tests.support.agent_e2e import jpeg, register_manifest, serve_world
from tests.support.world import World

AGENT = [sys.executable, "-m", "deletion_audit_agent"]
SIGNERS = ("prosecutor", "witness", "regulator")
PARTICIPANTS = ("prosecutor", "examiner", "vendor-officer", "witness", "regulator")


def run(cmd: list[str], *, check: bool = True, timeout: float = 120,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                         input=stdin)
    if check:
        assert out.returncode == 0, (cmd, out.stdout, out.stderr)
    return out


def faces_table(path: Path, faces: list[bytes]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE faces (id INTEGER PRIMARY KEY, jpeg TEXT)")
        conn.executemany("INSERT INTO faces VALUES (?, ?)",
                         [(i, base64.b64encode(f).decode()) for i, f in enumerate(faces)])
    conn.close()


def rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (n,) = conn.execute("SELECT count(*) FROM faces").fetchone()
    conn.close()
    return int(n)


@dataclass
class Site:
    server: Running
    world: World
    http: httpx.Client
    tmp: Path
    scope_id: int
    main_db: Path
    store_db: Path
    leftovers: list[str]

    def call(self, who: str, method: str, path: str, status: int = 200,
             **kwargs: Any) -> dict[str, Any]:
        r = self.http.request(method, f"{self.world.url}{path}",
                              headers=self.world[who].headers, **kwargs)
        assert r.status_code == status, r.text
        body: dict[str, Any] = r.json()
        return body

    def agent_config(self, name: str, db: Path, extra: str = "") -> Path:
        path = self.tmp / f"{name}.toml"
        path.write_text(f'''
server = "{self.server.base}"
state_dir = "{self.tmp / name}"
retry_attempts = 2
retry_base_seconds = 0.05
{extra}

[scopes."{self.scope_id}"]
url = "sqlite:///{db}"
''')
        return path

    def enroll(self, config: Path, token: str) -> None:
        run([*AGENT, "enroll", "--token", token, "--config", str(config)])

    def scan(self, config: Path) -> dict[str, Any]:
        out = run([*AGENT, "scan", "--scope", str(self.scope_id), "--json", "--config",
                   str(config)])
        [scan] = json.loads(out.stdout)["scans"]
        assert scan["challenged"] is True
        return dict(scan)

    def sign(self, who: str, sid: int, *, check: bool = True
             ) -> subprocess.CompletedProcess[str]:
        token = self.tmp / f"{who}.token"
        token.write_text(self.world[who].token)
        return run([*CLI, "session", "sign", f"{self.world.case_id}/{sid}",
                    "--key", str(self.tmp / f"{who}.pem"), "--server", self.server.base,
                    "--token-file", str(token), "--yes"], check=check)

    def verdict_after(self, when: datetime) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def ready() -> bool:
            verdict = self.call("prosecutor", "GET", "/verdict")
            fresh = datetime.fromisoformat(verdict["as_of"]["time"]) >= when
            found.update(verdict)
            return fresh and not verdict["stale"]

        wait_for(ready, 120, "a verdict after the session closed")
        return found


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    served = serve_world(tmp_path)
    server, db, world = served.server, served.db, served.world
    http = httpx.Client(base_url=server.base, timeout=30)
    faces = [jpeg(500 + i) for i in range(8)]
    main_db, store_db = tmp_path / "vendor-main.sqlite3", tmp_path / "store-7.sqlite3"
    faces_table(main_db, faces)
    faces_table(store_db, [*faces[:3], jpeg(900), jpeg(901)])  # 3 leftovers, 2 not evidence
    register_manifest(http, world, tmp_path, faces)
    r = http.post(f"{world.url}/scopes", headers=world["vendor-officer"].headers, json={
        "name": "faces", "kind": "sql", "expects_data": True, "location_codes": ["SH/STORE7"],
        "spec": {"table": "faces", "key_columns": ["id"], "content_column": "jpeg",
                 "encoding": "base64"}})
    assert r.status_code == 201, r.text
    try:
        yield Site(server=server, world=world, http=http, tmp=tmp_path,
                   scope_id=r.json()["id"], main_db=main_db, store_db=store_db,
                   leftovers=[hashlib.sha256(f).hexdigest() for f in faces[:3]])
    finally:
        http.close()
        db.dispose()
        stop(server)


def _register_keys(site: Site, names: tuple[str, ...]) -> None:
    for who in names:
        pem = site.tmp / f"{who}.pem"
        run([*CLI, "keygen", str(pem)])
        token = site.tmp / f"{who}.token"
        token.write_text(site.world[who].token)
        run([*CLI, "key", "register", f"{pem}.pub", "--server", site.server.base,
             "--token-file", str(token)])


def _open_session(site: Site) -> int:
    body = site.call("prosecutor", "POST", "/sessions", 201, json={
        "place": "某连锁门店7号店机房", "planned_at": datetime.now(UTC).isoformat(),
        "scope_ids": [site.scope_id], "sign_off": "prosecutor+2-witnesses",
        "participants": [{"user_id": site.world[n].user_id} for n in PARTICIPANTS]})
    sid: int = body["id"]
    return sid


def _examiner_agent(site: Site, sid: int, name: str) -> Path:
    token = site.call("examiner", "POST", f"/sessions/{sid}/enrollment-tokens", 201, json={})
    config = site.agent_config(name, site.store_db)
    site.enroll(config, token["token"])
    return config


def _record(site: Site, sid: int) -> dict[str, Any]:
    stat = site.store_db.stat()
    return site.call("examiner", "POST", f"/sessions/{sid}/record", 201, json={
        "environment": {"hostname": platform.node(),
                        "volume_ids": [f"dev={stat.st_dev},ino={stat.st_ino}"],
                        "note": "门店服务器铭牌与申报一致"},
        "remarks": "现场由门店店长开机"})


@pytest.mark.slow
class TestOnSiteSessionCase5:
    def test_findings_then_clean_and_witnessed(self, site: Site) -> None:
        _register_keys(site, (*PARTICIPANTS, "lab-examiner"))
        # The vendor's agent deletes remotely and reports clean (it reads the main database).
        token = site.call("vendor-officer", "POST", "/enrollment-tokens", 201,
                          json={"scope_ids": [site.scope_id]})
        vendor = site.agent_config("vendor", site.main_db, "allow_remote_delete = true")
        site.enroll(vendor, token["token"])
        site.call("prosecutor", "POST", "/deletion-requests", 201,
                  json={"scope_id": site.scope_id, "reason": "检察建议：删除人脸信息"})
        run([*AGENT, "run", "--once", "--config", str(vendor)])
        assert rows(site.main_db) == 0
        assert site.scan(vendor)["present"] == 0
        assert rows(site.store_db) == 5

        # Session 1: the examiner's agent scans the store's copy beside the vendor's agent.
        first = _open_session(site)
        examiner = _examiner_agent(site, first, "examiner-1")
        issued = site.call("examiner", "POST", f"/sessions/{first}/challenges", 201, json={})
        assert {c["origin"] for c in issued["challenges"]} == {"session"}
        assert len(issued["challenges"]) == 2
        assert site.scan(vendor)["present"] == 0
        assert site.scan(examiner)["present"] == 3
        results = site.call("witness", "GET", f"/sessions/{first}/results")
        [scope] = results["scopes"]
        assert (scope["items_present"], scope["found_by_examiner_only"]) == (3, 3)
        record = _record(site, first)
        assert "发现证据清单所列数据3项仍然存在" in record["summary_zh"]
        assert "其中3项是公司自己的检测程序没有报告的" in record["summary_zh"]

        shown = site.sign("prosecutor", first)
        assert "3 item(s) of the evidence manifest are still present" in shown.stdout
        assert "is recorded" in shown.stdout
        # Refused: a second signature by the same key; a member who is not a participant.
        again = site.sign("prosecutor", first, check=False)
        assert again.returncode == 1
        assert "already signed by key" in again.stderr
        outsider = site.sign("lab-examiner", first, check=False)
        assert outsider.returncode == 1
        assert "not_participant" in outsider.stderr
        site.sign("witness", first)
        closed = site.sign("regulator", first)
        assert "is closed, outcome findings" in closed.stdout
        late = site.sign("examiner", first, check=False)
        assert late.returncode == 1
        assert "session_closed" in late.stderr
        session = site.call("prosecutor", "GET", f"/sessions/{first}")
        verdict = site.verdict_after(datetime.fromisoformat(session["closed_at"]))
        assert verdict["outcome"] == "not_verified"
        [graded] = verdict["report"]["scopes"]
        assert graded["latest_challenged_scan"]["present"] == 3
        assert graded["latest_challenged_scan"]["grade"] == "witnessed"

        # The envelope verifies offline with the signers' public keys alone.
        envelope = site.tmp / "session-1.dsse.json"
        envelope.write_text(json.dumps(session["envelope"]))
        pubs = [arg for who in SIGNERS for arg in ("--pub", str(site.tmp / f"{who}.pem.pub"))]
        checked = run([*CLI, "envelope", "verify", str(envelope), *pubs, "--threshold", "3"])
        assert "3 signature(s) of 3 required" in checked.stdout
        assert dsse.Envelope.from_json(envelope.read_bytes()).payload == base64.b64decode(
            site.call("witness", "GET", f"/sessions/{first}/record")["payload"])

        # The vendor deletes at the store; session 2 closes clean; the scope is witnessed.
        fixed = site.agent_config("vendor", site.store_db, "allow_remote_delete = true")
        done = json.loads(run([*AGENT, "delete", "--scope", str(site.scope_id), "--yes",
                               "--json", "--config", str(fixed)]).stdout)
        assert done["deleted"] == 3
        assert rows(site.store_db) == 2
        second = _open_session(site)
        examiner = _examiner_agent(site, second, "examiner-2")
        site.call("examiner", "POST", f"/sessions/{second}/challenges", 201, json={})
        assert site.scan(fixed)["present"] == 0
        assert site.scan(examiner)["present"] == 0
        record = _record(site, second)
        assert "没有发现证据清单所列的数据" in record["summary_zh"]
        for who in SIGNERS:
            out = site.sign(who, second)
        assert "is closed, outcome clean" in out.stdout
        session = site.call("prosecutor", "GET", f"/sessions/{second}")
        verdict = site.verdict_after(datetime.fromisoformat(session["closed_at"]))
        assert verdict["outcome"] == "verified", verdict["report"]["reasons"]
        [graded] = verdict["report"]["scopes"]
        assert (graded["grade"], graded["covered"]) == ("witnessed", True)
        listed = site.call("witness", "GET", "/sessions")["items"]
        assert [(s["state"], s["outcome"]) for s in listed] == [
            ("closed", "findings"), ("closed", "clean")]

        # Both bundle tiers verify offline with the log's key alone and show both sessions.
        log_key = site.http.get("/api/v1/log/key").text.strip()
        for tier in ("court", "public"):
            bundle = site.tmp / f"{tier}.zip"
            run([*CLI, "export", str(site.world.case_id), "--tier", tier, "-o", str(bundle),
                 "--data-dir", str(site.tmp / "data")])
            checked = run([*CLI, "verify", str(bundle), "--log-key", log_key, "--json"])
            report = json.loads(checked.stdout)
            assert (report["result"], report["problems"]) == ("verified", []), report
            assert [(s["sessionId"], s["outcome"], s["signOffMet"], s["witnessed"])
                    for s in report["sessions"]] == [
                (str(first), "findings", True, True), (str(second), "clean", True, True)]
            shown = run([*CLI, "verify", str(bundle), "--log-key", log_key]).stdout
            assert f"现场勘验 {first}：有发现；签署规则已满足" in shown
