from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deletion_audit.clock import FixedClock
from tests.conftest import T0
from tests.support.log import LogEnv, make_log_env


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[LogEnv]:
    log_env = make_log_env(tmp_path, db_url, FixedClock(T0))
    yield log_env
    log_env.db.dispose()
