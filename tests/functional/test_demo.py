"""``deletion-audit demo --scale 0.01`` as CI runs it: a real process that starts the server,
the agents and (when installed) SeaweedFS, and tells case 1 to its verdict, then the month
after: the +30-day follow-up review on the server's domain clock moved ahead."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from deletion_audit.cli import COMMANDS
from deletion_audit.demo.processes import weed_binary

DEMO = [sys.executable, "-m", "deletion_audit", "demo"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DELETION_AUDIT_")}


def run_demo(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DEMO, *args], capture_output=True, text=True, timeout=timeout,
                          env=env(), check=False)


def server_url(output: str) -> str:
    found = re.search(r"http://127\.0\.0\.1:\d+", output)
    assert found, output
    return found.group(0)


def _running_with(text: str) -> list[str]:
    """The command lines of running processes that mention ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended while we looked
        if text in args:
            found.append(args)
    return found


def assert_stopped(url: str) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/healthz", timeout=2)


def verdict_after(lines: list[str], when: str) -> str:
    """The line under the step that waits for the verdict ``when``."""
    step = next(i for i, line in enumerate(lines)
                if f"Waiting for the server's verdict {when}" in line)
    return lines[step + 1]


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def review_events(bundle: Path) -> list[dict[str, Any]]:
    """The bundle's logged review events (their bodies, where the tier shows them)."""
    events = []
    with zipfile.ZipFile(bundle) as archive:
        for line in archive.read("events.jsonl").decode().splitlines():
            event = json.loads(line)
            if json.loads(base64.b64decode(event["leaf"]))["type"] == "review":
                events.append(event.get("body") or {})
    return events


@pytest.mark.slow
class TestDemo:
    def test_case_1_at_scale_001_ends_verified(self, tmp_path: Path) -> None:
        out = tmp_path / "demo-out"
        done = run_demo("--scale", "0.01", "--out", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].startswith("① 生成合成证据（规模 0.01） … / Generating synthetic")
        assert "185 张人脸图片、72 个视频，5 名合成人员" in done.stdout
        assert "257 项（图片 185，视频 72），5 人" in done.stdout
        assert any(line.startswith("⑤ 检察官立案") and "The prosecutor opens the case" in line
                   for line in lines)
        # The first scan finds the leftovers; the verdict then says not_verified.
        assert re.search(r"备份目录 backup：\d+ 个对象，其中 5 个是清单项目", done.stdout)
        assert re.search(r"访客数据库 visitor database：\d+ 个对象，其中 3 个是清单项目",
                         done.stdout)
        assert verdict_after(lines, "(before deletion)") == \
            "   裁决：未证实删除 / the verdict: not_verified"
        assert "原因 items_present" in done.stdout
        assert verdict_after(lines, "(after deletion and the challenged re-scan)") == \
            "   裁决：已证实删除 / the verdict: verified"
        # The backup server, the second host, is clean in the first month.
        assert re.search(r"备份服务器 backup server：\d+ 个对象，其中 0 个是清单项目", done.stdout)
        assert "裁决 / Verdict: verified（已证实删除）" in done.stdout

        # The month after: the +30-day review opens on the domain clock moved ahead, the
        # restored copies are found, the verdict falls, the company deletes again, and the
        # review closes clean once its window has passed.
        assert "DELETION_AUDIT_DOMAIN_CLOCK_OFFSET=P31D" in done.stdout
        assert "3 份早已删除的清单项目副本又出现在备份服务器上" in done.stdout
        assert re.search(r"回头看 1（预告，北京时间 [\d-]+ [\d:]+ 到期）：向 \d+ 个范围发出"
                         "新的挑战", done.stdout)
        assert re.search(r"备份服务器 backup server：\d+ 个对象，清单项目 3 ", done.stdout)
        during = lines.index(next(line for line in lines
                                  if "verdict (during the follow-up review)" in line))
        assert lines[during + 1] == "   裁决：未证实删除 / the verdict: not_verified"
        assert any(line.startswith("   原因 items_present")
                   for line in lines[during + 2:during + 6])
        assert "备份服务器 backup server：删除 3 份，签署 1 份删除声明；" in done.stdout
        assert "回头看 1 结论：未发现问题" in done.stdout
        assert "review 1 closed clean" in done.stdout
        assert verdict_after(lines, "(after the follow-up review closed)") == \
            "   裁决：已证实删除 / the verdict: verified"
        assert ("回头看 / Follow-up review 1 (+30 days): clean（未发现问题）; verdicts "
                "not_verified → verified → not_verified → verified") in done.stdout
        if weed_binary() is not None:
            assert re.search(r"对象存储 bucket：\d+ 个对象，其中 3 个是清单项目", done.stdout)
        else:
            assert "the object-store scope is skipped" in done.stdout
        assert_stopped(server_url(done.stdout))

        for person in ("prosecutor", "examiner", "officer"):
            assert mode(out / "keys" / f"{person}.key") == 0o600
            assert mode(out / "keys" / f"{person}.token") == 0o600
        assert mode(out / "agent" / "agent.toml") == 0o600
        assert mode(out / "agent-backup-server" / "agent.toml") == 0o600
        assert mode(out / "keys" / "subject.key") == 0o600
        vkey = (out / "log-verifier-key.txt").read_text().strip()
        assert vkey.startswith("deletion-audit.localhost/log+")
        assert f"written into {out}".lower() in done.stdout.lower()
        summary = (out / "SUMMARY.md").read_text()
        assert "verdict: **verified**" in summary
        assert "| outcome | **clean** (未发现问题) |" in summary
        assert "`not_verified` → `verified` → `not_verified` → `verified`" in summary
        assert "| ① Generating synthetic evidence (scale 0.01) |" in summary
        checked = subprocess.run([
            sys.executable, "-m", "deletion_audit", "manifest", "verify",
            str(out / "manifest" / "manifest.jsonl"), str(out / "manifest" / "manifest.dsse.json"),
            "--pub", str(out / "keys" / "examiner.key.pub")],
            capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        assert "257" in checked.stdout

        bundles = sorted(p.name for p in (out / "bundles").glob("*.zip"))
        if "export" in COMMANDS and "verify" in COMMANDS:
            assert bundles == ["case-1-court.zip", "case-1-public.zip"]
            for bundle in bundles:
                assert str(out / "bundles" / bundle) in done.stdout
            assert re.search(r"court: 已核验：\d+ 个事件", done.stdout)
            # Exported after the month after: the bundles hold the review, the court
            # bundle with its bodies (scheduled, opened, closed clean).
            court = review_events(out / "bundles" / "case-1-court.zip")
            actions = [(e.get("action"), e.get("kind"), e.get("outcome")) for e in court]
            assert ("opened", "announced", None) in actions
            assert ("closed", "announced", "clean") in actions
            assert actions.count(("scheduled", "announced", None)) == 3
            assert len(review_events(out / "bundles" / "case-1-public.zip")) == len(court)
        else:
            assert bundles == []
            assert "no export/verify command" in done.stdout

    def test_a_directory_it_did_not_write_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "notes.txt").write_text("mine")
        done = run_demo("--scale", "0.01", "--out", str(tmp_path))
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            f"error: ① Generating synthetic evidence (scale 0.01): --out {tmp_path} holds "
            "files the demo did not write; give an empty or new directory"]
        assert (tmp_path / "notes.txt").read_text() == "mine"
        assert not (tmp_path / "evidence").exists()

    def test_an_unknown_scale_is_a_usage_error(self, tmp_path: Path) -> None:
        done = run_demo("--scale", "0.5", "--out", str(tmp_path / "out"))
        assert done.returncode == 2
        assert "'0.5' is not one of '0.01', '0.1', '1'" in done.stderr

    def test_ctrl_c_stops_the_server(self, tmp_path: Path) -> None:
        proc = subprocess.Popen([*DEMO, "--scale", "0.01", "--out", str(tmp_path / "out"),
                                 "--no-s3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env())
        assert proc.stdout is not None
        url = None
        try:
            for line in proc.stdout:
                if "http://127.0.0.1:" in line:
                    url = server_url(line)
                    break
            assert url is not None, "the demo never started its server"
            assert httpx.get(url + "/healthz", timeout=5).status_code == 200
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 130
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate()
        assert "interrupted" in err
        assert_stopped(url)
        # Nothing the demo started (each server in a session of its own) is left running.
        assert _running_with(str(tmp_path)) == []
