"""What the demo may clear in ``--out``, and how it tells the steps."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from deletion_audit.demo.layout import MARKER, Layout, write_secret
from deletion_audit.demo.processes import DemoError, Process, _await_start, wait_for
from deletion_audit.demo.say import Narrator


class TestLayout:
    def test_a_new_directory_is_made_with_private_subdirectories(self, tmp_path: Path) -> None:
        layout = Layout(tmp_path / "out")
        layout.prepare()
        assert (layout.out / MARKER).exists()
        assert layout.keys.stat().st_mode & 0o777 == 0o700

    def test_an_earlier_run_is_cleared_but_its_evidence_kept(self, tmp_path: Path) -> None:
        layout = Layout(tmp_path / "out")
        layout.prepare()
        layout.evidence.mkdir()
        (layout.evidence / "a.jpg").write_bytes(b"x")
        write_secret(layout.token_file("prosecutor"), "old")
        layout.data.mkdir()
        layout.summary.write_text("old")
        layout.prepare()
        assert (layout.evidence / "a.jpg").exists()
        assert not layout.token_file("prosecutor").exists()
        assert not layout.data.exists()
        assert not layout.summary.exists()

    def test_the_backup_servers_agent_is_cleared_with_the_rest(self, tmp_path: Path) -> None:
        layout = Layout(tmp_path / "out")
        layout.prepare()
        write_secret(layout.second_agent_config, "old")
        layout.prepare()
        assert not layout.second_agent_config.exists()
        assert layout.second_agent.stat().st_mode & 0o777 == 0o700

    def test_a_directory_holding_other_files_is_refused_untouched(self, tmp_path: Path) -> None:
        (tmp_path / "thesis.tex").write_text("mine")
        with pytest.raises(DemoError, match="holds files the demo did not write"):
            Layout(tmp_path).prepare()
        assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]

    def test_a_file_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "out").write_text("")
        with pytest.raises(DemoError, match="is a file"):
            Layout(tmp_path / "out").prepare()

    def test_secrets_are_0600_and_never_overwritten(self, tmp_path: Path) -> None:
        path = write_secret(tmp_path / "t", "secret")
        assert path.stat().st_mode & 0o777 == 0o600
        with pytest.raises(FileExistsError):
            write_secret(path, "other")


class TestNarrator:
    def test_one_numbered_line_per_step_chinese_first(self) -> None:
        lines: list[str] = []
        say = Narrator(lines.append)
        say.step("检察官立案", "The prosecutor opens the case")
        say.detail("案号 1", "case 1")
        say.step("裁决", "The verdict")
        assert lines == ["① 检察官立案 … / The prosecutor opens the case …",
                         "   案号 1 / case 1", "② 裁决 … / The verdict …"]
        assert say.current == "② The verdict"
        assert [step for step, _ in say.durations()] == [
            "① The prosecutor opens the case", "② The verdict"]
        assert all(seconds >= 0 for _, seconds in say.durations())

    def test_steps_past_twenty_keep_their_circled_numbers(self) -> None:
        lines: list[str] = []
        say = Narrator(lines.append)
        for n in range(1, 32):
            say.step(f"第 {n} 步", f"step {n}")
        assert lines[19].startswith("⑳ ")
        assert lines[20].startswith("㉑ ")
        assert lines[29].startswith("㉚ ")
        assert lines[30].startswith("(31) ")


    # The swallowed KeyboardInterrupt is what pytest reports as unraisable: expected here.
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    def test_a_ctrl_c_swallowed_by_a_finalizer_stops_the_demo_at_the_next_step(
        self
    ) -> None:
        # Python ignores (prints) an exception raised inside __del__: a Ctrl-C landing in a
        # finalizer would not stop the demo by its KeyboardInterrupt alone.
        lines: list[str] = []
        say = Narrator(lines.append)
        say.step("开始", "start")

        class Finalized:
            def __del__(self) -> None:
                say.interrupt(signal.SIGINT, None)

        obj = Finalized()
        del obj  # the handler runs in its finalizer: the exception is swallowed
        assert say.interrupted
        with pytest.raises(KeyboardInterrupt):
            say.step("下一步", "next")
        assert lines == ["① 开始 … / start …"]


class TestAwaitStart:
    """A child the demo starts runs in a session of its own: if the wait for it to come up
    ends early, by Ctrl-C too, the child is stopped before the exception goes on."""

    def _child(self, tmp_path: Path) -> Process:
        return Process([sys.executable, "-c", "import time; time.sleep(120)"],
                       log=tmp_path / "child.log", env=dict(os.environ))

    @pytest.mark.parametrize("stop", [KeyboardInterrupt, DemoError])
    def test_the_child_is_stopped_when_its_wait_ends_early(
        self, tmp_path: Path, stop: type[BaseException]
    ) -> None:
        child = self._child(tmp_path)

        def up() -> bool:
            raise stop("stop")

        with pytest.raises(stop):
            _await_start(child, up, timeout=30, what="the child")
        assert child.exited() is not None

    def test_a_child_that_came_up_is_left_running(self, tmp_path: Path) -> None:
        child = self._child(tmp_path)
        try:
            _await_start(child, lambda: True, timeout=30, what="the child")
            assert child.exited() is None
        finally:
            child.stop()


class TestWaitFor:
    def test_returns_the_first_true_value(self) -> None:
        calls = iter([None, False, 0, "ready"])
        assert wait_for(lambda: next(calls), timeout=5, what="x") == 0

    def test_gives_up_naming_what_it_waited_for(self) -> None:
        with pytest.raises(DemoError, match="waiting for the moon"):
            wait_for(lambda: None, timeout=0, what="the moon")
