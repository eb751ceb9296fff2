"""`tidegate admin ...`: administration straight on the console's database (no console needed).

`create-token` migrates the database first (so it works before the console ever ran), records
the audit event like the API does, and prints only the secret on stdout, for scripts:
`TOKEN=$(tidegate admin create-token --role ci --name pipeline)`.
"""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from tidegate.cli.console_cmd import add_console_options, console_settings
from tidegate.cli.exit_codes import ExitCode
from tidegate.core.roles import Role


def register(commands: Any) -> None:
    admin = commands.add_parser("admin", help="administer the console's database directly")
    sub = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    p = sub.add_parser("create-token", help="create an API token and print it (once)")
    add_console_options(p)
    p.add_argument(
        "--role",
        required=True,
        choices=[str(r) for r in Role],
        help="what the token may do",
    )
    p.add_argument("--name", help="a name to recognise the token by (default: ROLE-DATE)")
    p.add_argument(
        "--expires-in-days", type=int, metavar="DAYS", help="expire after DAYS (default: never)"
    )
    p.set_defaults(run=run_create_token)


def run_create_token(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitCode:
    now = datetime.now(UTC)
    role = Role(args.role)
    name = args.name or f"{role}-{now:%Y%m%d-%H%M%S}"
    expires = None
    if args.expires_in_days is not None:
        if args.expires_in_days < 1:
            err.write("tidegate: error: --expires-in-days: must be 1 or more\n")
            return ExitCode.USAGE
        expires = now + timedelta(days=args.expires_in_days)
    from tidegate.services.tokens import create_token
    from tidegate.store.db import Database

    database = Database(console_settings(args).database_url)
    try:
        database.migrate()
        with database.session() as session:
            actor = f"cli:{getpass.getuser()}"
            issued = create_token(
                session, name=name, role=role, now=now, actor=actor, expires_at=expires
            )
    finally:
        database.dispose()
    err.write(f"created API token {name!r} (role {role}, id {issued.info.id}); shown once:\n")
    out.write(issued.secret + "\n")
    return ExitCode.OK
