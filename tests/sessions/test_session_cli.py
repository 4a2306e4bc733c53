"""``deletion-audit session sign``: the record read, shown and co-signed locally, and its
refusals as one line with a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from deletion_audit.cli import main
from deletion_audit.commands._common import CliError
from deletion_audit.commands.session import sign_over_http
from tests.support.sessions import OnSite
from tests.verdicts.conftest import Case


def _recorded(case: Case, present: list[str]) -> tuple[OnSite, int]:
    onsite = OnSite.start(case)
    sid = onsite.open()
    agent = onsite.enroll_examiner_agent(sid)
    onsite.challenge(sid)
    onsite.scan(agent, present=present)
    onsite.record(sid)
    return onsite, sid


class TestSignOverHttp:
    def test_reads_shows_and_signs(self, case: Case, capsys: pytest.CaptureFixture[str]
                                   ) -> None:
        onsite, sid = _recorded(case, case.digests[:3])
        for name in ("prosecutor", "witness"):
            result = sign_over_http(case.client, case_id=str(case.world.case_id),
                                    session_id=str(sid), key=onsite.signers[name].key,
                                    token=case.world[name].token, confirm=None)
            assert result["state"] == "recorded"
        shown = capsys.readouterr().out
        assert "发现证据清单所列数据3项仍然存在" in shown
        assert "3 item(s) of the evidence manifest are still present" in shown
        result = sign_over_http(case.client, case_id=str(case.world.case_id),
                                session_id=str(sid), key=onsite.signers["regulator"].key,
                                token=case.world["regulator"].token, confirm=None)
        assert (result["state"], result["outcome"]) == ("closed", "findings")
        envelope = onsite.get(sid)["envelope"]
        assert len(envelope["signatures"]) == 3

    def test_declining_sends_nothing(self, case: Case) -> None:
        onsite, sid = _recorded(case, [])
        with pytest.raises(CliError, match="not signed"):
            sign_over_http(case.client, case_id=str(case.world.case_id), session_id=str(sid),
                           key=onsite.signers["witness"].key,
                           token=case.world["witness"].token, confirm=lambda: False)
        assert onsite.get(sid)["envelope"] is None

    def test_signing_twice_is_refused_before_anything_is_sent(self, case: Case) -> None:
        onsite, sid = _recorded(case, [])
        args = {"case_id": str(case.world.case_id), "session_id": str(sid),
                "key": onsite.signers["witness"].key, "token": case.world["witness"].token,
                "confirm": None}
        sign_over_http(case.client, **args)
        with pytest.raises(CliError, match="already signed by key"):
            sign_over_http(case.client, **args)

    def test_a_non_participant_gets_the_servers_reason(self, case: Case) -> None:
        _onsite, sid = _recorded(case, [])
        outsider = OnSite.start(case, names=("vendor-officer",))
        with pytest.raises(CliError, match=r"403 \[not_participant\]"):
            sign_over_http(case.client, case_id=str(case.world.case_id), session_id=str(sid),
                           key=outsider.signers["vendor-officer"].key,
                           token=case.world["vendor-officer"].token, confirm=None)


class TestCommandLine:
    @staticmethod
    def _run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["session", "sign", *args])
        return result.exit_code, result.stderr

    def test_a_bad_session_reference_is_a_usage_error(self, tmp_path: Path) -> None:
        code, err = self._run("twelve", "--key", str(tmp_path / "k.pem"), "--server",
                              "http://127.0.0.1:1", "--token", "t")
        assert code == 2
        assert "CASE/SESSION" in err

    def test_a_missing_key_file_is_one_line(self, tmp_path: Path) -> None:
        code, err = self._run("1/2", "--key", str(tmp_path / "k.pem"), "--server",
                              "http://127.0.0.1:1", "--token", "t")
        assert code == 1
        assert err.startswith("error:")
        assert "k.pem" in err
        assert len(err.strip().splitlines()) == 1

    def test_plain_http_to_a_remote_server_is_refused(self, tmp_path: Path) -> None:
        from deletion_audit.core import keys
        keys.write_keypair(tmp_path / "k.pem")
        code, err = self._run("1/2", "--key", str(tmp_path / "k.pem"), "--server",
                              "http://example.org", "--token", "t")
        assert code == 1
        assert "plain HTTP" in err
