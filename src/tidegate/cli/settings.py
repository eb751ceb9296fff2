"""Where the CLI keeps things: the data directory and the vulnerability DB (flag, env, default)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from platformdirs import user_data_dir

from tidegate.vulndb import default_db_path

ENV_DATA_DIR = "TIDEGATE_DATA_DIR"
ENV_DB = "TIDEGATE_DB"


def add_db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        help=f"data directory (or ${ENV_DATA_DIR}; default: {user_data_dir('tidegate')})",
    )
    p.add_argument(
        "--db", type=Path, help=f"vulnerability DB file (or ${ENV_DB}; default: DATA_DIR/vulndb/)"
    )


def data_dir(args: argparse.Namespace) -> Path:
    if getattr(args, "data_dir", None) is not None:
        return Path(args.data_dir)
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env) if env else Path(user_data_dir("tidegate"))


def db_path(args: argparse.Namespace) -> tuple[Path, bool]:
    """The DB file, and whether the user named it (a named DB must exist)."""
    if getattr(args, "db", None) is not None:
        return Path(args.db), True
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env), True
    return default_db_path(data_dir(args)), False
