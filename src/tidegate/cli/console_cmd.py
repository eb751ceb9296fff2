"""`tidegate console`: migrate the database in place, make the first administrator, serve the API.

Settings come from the flags, then `TIDEGATE_*` variables, then defaults. Without
TIDEGATE_SECRET_KEY the console keeps a random secret in DATA_DIR/secret_key (made once, mode
0600), so the embedded default runs without setup and never on the published default secret.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from platformdirs import user_data_dir

from tidegate.cli.exit_codes import ExitCode
from tidegate.core.errors import UsageError

if TYPE_CHECKING:
    from tidegate.console.settings import Settings

SECRET_FILE = "secret_key"


def register(commands: Any) -> None:
    p = commands.add_parser("console", help="run the console (REST API) on this machine")
    add_console_options(p)
    p.add_argument("--host", help="address to listen on (or $TIDEGATE_HOST; default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (or $TIDEGATE_PORT; default 8080)")
    p.set_defaults(run=run_console)


def add_console_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        help=f"data directory (or $TIDEGATE_DATA_DIR; default: {user_data_dir('tidegate')})",
    )


def _stored_secret(data_dir: Path) -> str:
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def console_settings(args: argparse.Namespace) -> Settings:
    """Settings from flags over `TIDEGATE_*` over defaults; a bad value is a UsageError."""
    from pydantic import ValidationError

    from tidegate.console.settings import Settings

    given = {
        key: getattr(args, key)
        for key in ("data_dir", "host", "port")
        if getattr(args, key, None) is not None
    }
    try:
        if "TIDEGATE_SECRET_KEY" not in os.environ:
            data_dir = Settings(environment="development", **given).data_dir
            given["secret_key"] = _stored_secret(data_dir)
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(f"console settings: {problems}") from exc


def prepare_database(settings: Settings, now: datetime, out: TextIO) -> str | None:
    """Migrate in place and create `admin` on a console without users; its new password."""
    # the store and the app load only for the commands that serve or migrate (CLI start-up time)
    from tidegate.services.users import ensure_initial_admin
    from tidegate.store.db import Database

    database = Database(settings.database_url)
    try:
        database.migrate()
        out.write(
            f"database: {database.safe_url} (revision {', '.join(database.current_revisions())})\n"
        )
        given = settings.admin_password.get_secret_value() if settings.admin_password else None
        with database.session() as session:
            password = ensure_initial_admin(session, now=now, password=given)
        return password if password is not None and given is None else None
    finally:
        database.dispose()


def run_console(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    serve: Callable[[Settings], None] | None = None,
) -> ExitCode:
    from tidegate.console.app import API_PREFIX
    from tidegate.services.users import INITIAL_ADMIN

    settings = console_settings(args)
    password = prepare_database(settings, datetime.now(UTC), out)
    base = f"http://{settings.host}:{settings.port}"
    out.write(f"console: {base}  (API {base}{API_PREFIX}, docs {base}{API_PREFIX}/docs)\n")
    if password is not None:
        out.write(
            f"first start: created user {INITIAL_ADMIN!r} with password {password}\n"
            "  (shown only this once; set TIDEGATE_ADMIN_PASSWORD before the first start"
            " to choose it)\n"
        )
    out.write(
        f"log in: curl -s -X POST {base}{API_PREFIX}/auth/login -H 'content-type: application/json'"
        f' -d \'{{"username": "{INITIAL_ADMIN}", "password": "..."}}\'\n'
        f"  then send 'Authorization: Bearer <access_token>';"
        f" script tokens: tidegate admin create-token --role ci\n"
    )
    out.flush()
    (serve or _uvicorn)(settings)
    return ExitCode.OK


def _uvicorn(settings: Settings) -> None:
    import uvicorn  # the server is only needed when serving

    from tidegate.console.app import create_app

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
