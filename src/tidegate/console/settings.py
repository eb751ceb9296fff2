"""The console's settings: from arguments, then `TIDEGATE_*` environment variables, then defaults.

Outside development the default secret key is refused, so a production console never runs with
a secret that is printed in this file.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal, Self

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_KEY = "changethis"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDEGATE_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("tidegate")))
    database_url: str = ""
    """SQLAlchemy URL; default: SQLite at DATA_DIR/console.sqlite."""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    environment: Literal["development", "production"] = "production"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    vulndb_path: Path = Path()
    """The vulnerability database; default: DATA_DIR/vulndb/vulndb.sqlite."""
    admin_password: SecretStr | None = None
    """Password of the `admin` user created on first start (a random one is printed otherwise)."""
    login_token_ttl: timedelta = timedelta(hours=12)
    encryption_key: SecretStr | None = None
    """Seals registry credentials at rest (at least 16 characters); without it none are stored."""

    @property
    def encryption_secret(self) -> str | None:
        """The encryption key's value, for services.registries."""
        return self.encryption_key.get_secret_value() if self.encryption_key else None

    embedded_workers: int = Field(default=1, ge=0, le=64)
    """In-process scan workers started with the console (0: only remote `tidegate scanner`s)."""
    scheduler: bool = True
    """Run the scheduler (on one replica at a time, holding the `scheduler` lease)."""
    scheduler_interval: float = Field(default=5.0, gt=0, le=3600)
    """Seconds between scheduler ticks (reclaim dead leases, expiries, due pulls, re-matches)."""
    scheduler_lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    """How long a replica holds the scheduler lease without renewing it."""
    job_lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    """A scan job's lease: a worker silent this long is presumed dead and its job retried."""
    job_max_attempts: int = Field(default=3, ge=1, le=100)
    """Attempts of a scan job before it is dead-lettered."""
    job_retry_backoff: timedelta = timedelta(seconds=30)
    """Delay before the first retry of a failed scan job; doubled for each further attempt."""
    rescan_interval: timedelta = timedelta(hours=6)
    """How often stored scans are checked against the current DB snapshot and analyzers."""

    @model_validator(mode="after")
    def _defaults_and_secret(self) -> Self:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'console.sqlite'}"
        if self.vulndb_path == Path():
            self.vulndb_path = self.data_dir / "vulndb" / "vulndb.sqlite"
        if self.environment != "development" and (
            self.secret_key.get_secret_value() == DEFAULT_SECRET_KEY
        ):
            raise ValueError(
                "secret_key: the default secret is refused outside development;"
                " set TIDEGATE_SECRET_KEY (or TIDEGATE_ENVIRONMENT=development)"
            )
        return self
