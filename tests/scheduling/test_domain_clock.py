"""The domain clock's development offset: the month after, for the demo, refused elsewhere;
the transport clock (request signatures, leases, webhook timestamps) stays real."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from deletion_audit.app import build_context
from deletion_audit.config import Settings
from tests.support.log import LogEnv

MONTH = timedelta(days=30)


class TestDomainClockOffset:
    @pytest.mark.parametrize("environment", ["test", "production"])
    def test_refused_outside_development(self, environment: str, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="development only"):
            Settings(environment=environment, data_dir=tmp_path,  # type: ignore[arg-type]
                     db_url="postgresql://db/x", log_origin="audit.example.gov.cn/log",
                     domain_clock_offset=MONTH)

    def test_read_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DELETION_AUDIT_DOMAIN_CLOCK_OFFSET", "P30D")
        assert Settings(environment="development").domain_clock_offset == MONTH

    def test_the_instances_domain_clock_runs_ahead(self, env: LogEnv) -> None:
        settings = env.settings.model_copy(update={"environment": "development",
                                                   "domain_clock_offset": MONTH})
        ctx = build_context(settings, db=env.db)
        ahead = ctx.clock.now() - datetime.now(UTC)
        assert MONTH - timedelta(seconds=5) < ahead <= MONTH
