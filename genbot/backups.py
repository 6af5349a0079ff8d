"""Database backups: PostgreSQL through pg_dump's custom format, SQLite through its online
backup API (a consistent copy while the bot keeps writing). Retention keeps the newest N."""
from __future__ import annotations

import os
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import environ
from django.conf import settings
from django.db import connections

PREFIX = "genbot-"


class BackupError(Exception):
    """A backup or restore could not be made; the message says why, for an operator."""


@dataclass(frozen=True)
class Target:
    vendor: str  # "postgresql" | "sqlite"
    config: dict

    @classmethod
    def from_settings(cls, alias: str = "default") -> "Target":
        config = settings.DATABASES[alias]
        return cls(_vendor(config["ENGINE"]), config)

    @classmethod
    def from_url(cls, url: str) -> "Target":
        config = environ.Env.db_url_config(url)
        return cls(_vendor(config["ENGINE"]), config)

    def pg_env(self) -> dict[str, str]:
        c = self.config
        env = {**os.environ, "PGDATABASE": c["NAME"]}
        for key, var in (("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD"), ("HOST", "PGHOST"), ("PORT", "PGPORT")):
            if c.get(key):
                env[var] = str(c[key])
        return env


def _vendor(engine: str) -> str:
    if "postgresql" in engine:
        return "postgresql"
    if "sqlite" in engine:
        return "sqlite"
    raise BackupError(f"backups support PostgreSQL and SQLite, not {engine}")


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[:2000]}")


def _private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 (a backup holds every customer's data and money);
    pg_dump and SQLite then write into it and keep its mode (and SQLite's journal takes it too)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def make_backup(*, directory: Path | None = None, keep: int | None = None, target: Target | None = None) -> Path:
    """Write a backup of the database to ``directory``; delete all but the newest ``keep``."""
    directory = Path(directory or settings.BACKUP_DIR)
    keep = settings.BACKUP_KEEP if keep is None else keep
    target = target or Target.from_settings()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    if target.vendor == "postgresql":
        path = _private_file(directory / f"{PREFIX}{stamp}.dump")
        _run(["pg_dump", "--format=custom", "--no-owner", f"--file={path}"], target.pg_env())
    else:
        path = _private_file(directory / f"{PREFIX}{stamp}.sqlite3")
        source = sqlite3.connect(target.config["NAME"])
        dest = sqlite3.connect(path)
        try:
            with dest:
                source.backup(dest)
        finally:
            dest.close()
            source.close()
    prune(directory=directory, keep=keep)
    return path


def prune(*, directory: Path, keep: int) -> list[Path]:
    backups = sorted(directory.glob(f"{PREFIX}*"), key=lambda p: p.name, reverse=True)
    removed = backups[max(keep, 1):]
    for old in removed:
        old.unlink()
    return removed


def restore_backup(*, path: Path, target: Target | None = None) -> None:
    """Replace the target database's contents with the backup at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    target = target or Target.from_settings()
    if target.vendor == "postgresql":
        if path.suffix != ".dump":
            raise BackupError(f"{path} is not a PostgreSQL backup (.dump)")
        connections.close_all()
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
              f"--dbname={target.config['NAME']}", str(path)], target.pg_env())
    else:
        with path.open("rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise BackupError(f"{path} is not an SQLite backup")
        connections.close_all()
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        dest = sqlite3.connect(target.config["NAME"])
        try:
            source.backup(dest)
        finally:
            dest.close()
            source.close()
