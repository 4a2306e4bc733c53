"""The agent installs and runs without any server dependency."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
class TestPlainInstall:
    def test_agent_runs_without_server_libraries(self, tmp_path: Path) -> None:
        env_dir = tmp_path / "venv"
        venv.EnvBuilder(with_pip=True).create(env_dir)
        py = env_dir / "bin" / "python"
        # A regular (non-editable) install of the distribution with no extras.
        subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             str(ROOT)],
            check=True, capture_output=True, cwd=tmp_path,
        )
        agent = env_dir / "bin" / "deletion-audit-agent"
        version = subprocess.run([str(agent), "--version"], capture_output=True, text=True,
                                 check=True, cwd=tmp_path)
        assert "deletion-audit-agent" in version.stdout
        status = subprocess.run(
            [str(agent), "status", "--json", "--config", str(tmp_path / "none.toml")],
            capture_output=True, text=True, check=False, cwd=tmp_path,
        )
        assert status.returncode == 1
        assert '"enrolled": false' in status.stdout
        probe = subprocess.run(
            [str(py), "-c",
             "import importlib.util as u, json;"
             "print(json.dumps({m: u.find_spec(m) is not None for m in "
             "['fastapi','sqlalchemy','uvicorn','alembic','deletion_audit.core.dsse',"
             "'deletion_audit_agent']}))"],
            capture_output=True, text=True, check=True, cwd=tmp_path,
        )
        found = __import__("json").loads(probe.stdout)
        assert found == {
            "fastapi": False, "sqlalchemy": False, "uvicorn": False, "alembic": False,
            "deletion_audit.core.dsse": True, "deletion_audit_agent": True,
        }
        assert sys.version_info >= (3, 11)
