"""Settings: one class, ``DELETION_AUDIT_`` environment variables, safe defaults refused
outside development."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ORIGIN = "deletion-audit.localhost/log"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DELETION_AUDIT_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(default=Path("data"))
    db_url: str | None = None
    log_key_file: Path | None = None
    service_key_file: Path | None = None
    # The last checkpoint this instance signed, kept outside the database so a restored
    # backup cannot silently fork the log (DESIGN: log identity).
    checkpoint_file: Path | None = None
    log_origin: str = DEFAULT_ORIGIN
    integrate_interval_seconds: float = 0.25
    integrate_batch: int = 50_000
    # The scheduler: the leader's lease (renewed at a third of it), how often tick(now) and
    # the notification sender run (seconds, transport clock).
    scheduler_lease_seconds: float = Field(default=15.0, gt=0)
    tick_interval_seconds: float = Field(default=30.0, gt=0)
    send_interval_seconds: float = Field(default=5.0, gt=0)
    # E-mail notifications (SMTP); webhooks need no setting. Without a host, e-mails wait.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "deletion-audit@localhost"
    # How long after a case closes the service keeps its own item rows, pseudonyms and
    # salts (the log's commitments stay): PIPL Art. 56 asks for at least 3 years.
    case_data_retention_days: int = Field(default=3 * 365, gt=0)
    # Development only: the domain clock runs this far ahead of real time (ISO 8601, e.g.
    # P30D), so the demo can show the month after; request signatures stay on real time.
    domain_clock_offset: timedelta = timedelta(0)

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> Settings:
        if self.domain_clock_offset and self.environment != "development":
            raise ValueError(
                "DELETION_AUDIT_DOMAIN_CLOCK_OFFSET moves the domain clock (deadlines, "
                "liveness, reviews): allowed in development only"
            )
        if self.environment == "production":
            if self.db_url is None:
                raise ValueError(
                    "production needs DELETION_AUDIT_DB_URL set explicitly "
                    "(the embedded SQLite default is for development)"
                )
            if self.log_origin == DEFAULT_ORIGIN:
                raise ValueError(
                    "production needs DELETION_AUDIT_LOG_ORIGIN: the log's public name, "
                    "e.g. audit.example.gov.cn/log"
                )
        return self

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'deletion-audit.sqlite3').resolve()}"

    @property
    def is_embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def log_key_path(self) -> Path:
        return self.log_key_file or self.data_dir / "log.key"

    @property
    def service_key_path(self) -> Path:
        return self.service_key_file or self.data_dir / "service.key"

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint_file or self.data_dir / "checkpoint"
