"""The migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from deletion_audit import migrations
from deletion_audit.db import make_engine
from deletion_audit.models import Base


class TestMigrationsMatchModels:
    def test_no_difference_at_head(self, db_url: str) -> None:
        engine = make_engine(db_url)
        try:
            assert migrations.current_revision(engine) == migrations.head_revision(engine)
            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        finally:
            engine.dispose()
        assert diff == []

    def test_downgrade_to_the_log_and_back(self, db_url: str) -> None:
        engine = make_engine(db_url)
        try:
            command.downgrade(migrations.alembic_config(engine), "0001")
            assert migrations.current_revision(engine) == "0001"
            migrations.upgrade(engine)
            assert migrations.current_revision(engine) == migrations.head_revision(engine)
        finally:
            engine.dispose()
