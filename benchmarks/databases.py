"""Throwaway PostgreSQL databases for the benchmarks that need several processes on one database."""

from __future__ import annotations

import psycopg2


def fresh_database(url: str, suffix: str = "load") -> str:
    """Drop and create `<name>_<suffix>` on the server of `url`; returns its URL."""
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    base, _, name = url.rpartition("/")
    name = f"{name or 'unit_annotator'}_{suffix}"
    admin = psycopg2.connect(f"{base}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    base, _, name = url.rpartition("/")
    admin = psycopg2.connect(f"{base}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()
