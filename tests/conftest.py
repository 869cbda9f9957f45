"""Shared test plumbing: the fixture root and the flag that rewrites golden files."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
RULES = ROOT / "rules" / "content-consolidation.toml"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite the expected files of golden tests after a deliberate change.",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def pg_admin_url():
    """One embedded PostgreSQL for the session, standing for users' own servers: its superuser's URL."""
    import warnings

    from tableshift.db import server

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with server.embedded() as srv:
            yield srv.admin_url


_databases = itertools.count()


def users_database(admin_url: str, *scripts: str | Path) -> str:
    """A new database on that server with what a Supabase project has, then `scripts` (SQL text,
    or a schema file loaded as tableshift loads one) run as its superuser, as a user's database
    would have them; its URL."""
    import psycopg

    from tableshift.db import load

    name = f"user{next(_databases)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = admin_url.replace("/postgres?", f"/{name}?")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(load.SUPABASE_ROLES)
        loader = load.Loader(conn, conn)
        loader.prelude()
        loader.finish()
        for script in scripts:
            if isinstance(script, Path):
                loader.load(script, what="schema")
            else:
                conn.execute(script)
    return url


def run_script(url: str, script: str) -> list[tuple]:
    """Run a script as psql would; the rows of its last statement that returns any."""
    import psycopg

    rows: list[tuple] = []
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(script)
        while True:
            if cur.description is not None:
                rows = cur.fetchall()
            if not cur.nextset():
                break
    return rows


@pytest.fixture(scope="session")
def node_oracle() -> Path:
    """tests/oracle with its npm packages (the real postgrest-js client, Prettier) installed:
    `npm ci` on first use. Node and npm are on every machine here, and CI reaches the registry."""
    import shutil
    import subprocess

    oracle = Path(__file__).resolve().parent / "oracle"
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed: the real postgrest-js client and Prettier are the oracles here")
    modules = oracle / "node_modules"
    if not ((modules / "@supabase" / "postgrest-js").is_dir() and (modules / "prettier").is_dir()):
        proc = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=oracle, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"npm ci in tests/oracle failed: {proc.stderr[-500:]}"
    return oracle
