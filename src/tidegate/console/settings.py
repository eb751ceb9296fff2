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
