"""Shared fixtures: real vaults (real Argon2id parameters), the CLI in-process and as a
subprocess, and Arabic sample data."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from athar.cli.demo import register
from athar.cli.main import app
from athar.records.service import Records
from athar.vault.vault import Vault
from pgserver import PostgresServer, find_bindir

PASSPHRASE = "كلمة سر طويلة للاختبار — test passphrase"
ARABIC_TEXT = "شهادة: سقطت ثلاث قذائف قرب الفرن في حي الشهداء، والناس ينتظرون الخبز.\n"

register(app)


@pytest.fixture
def passphrase() -> str:
    return PASSPHRASE


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    return tmp_path / "vault"


@pytest.fixture
def vault(vault_dir: Path) -> Iterator[Vault]:
    v = Vault.create(vault_dir, PASSPHRASE)
    yield v
    v.close()


@pytest.fixture
def sample_files(tmp_path: Path) -> Path:
    """A folder with an Arabic testimony, binary data, an empty file and a subfolder."""
    src = tmp_path / "evidence"
    (src / "sub").mkdir(parents=True)
    (src / "شهادة-٧.txt").write_text(ARABIC_TEXT, encoding="utf-8")
    (src / "clip.bin").write_bytes(os.urandom(300_000))
    (src / "empty.txt").write_bytes(b"")
    (src / "sub" / "note-en.txt").write_text("Three shells fell near the bakery.\n")
    return src


@pytest.fixture
def cli(vault_dir: Path) -> Callable[..., object]:
    """Run the CLI in-process with the test vault and passphrase in the environment."""
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None):
        full_env = {
            "ATHAR_VAULT": str(vault_dir),
            "ATHAR_PASSPHRASE": PASSPHRASE,
            "ATHAR_LANG": "en",
        }
        full_env.update(env or {})
        return runner.invoke(app, list(args), env=full_env, input=input, catch_exceptions=False)

    return run


def athar_subprocess(
    *args: str, vault_dir: Path, env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.Popen[bytes]:
    """Start the real `athar` in a child process (for kill -9 and concurrency tests)."""
    full_env = dict(os.environ)
    full_env.update({"ATHAR_VAULT": str(vault_dir), "ATHAR_PASSPHRASE": PASSPHRASE})
    full_env.update(env or {})
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "athar", *args], env=full_env, **kwargs
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real, throwaway PostgreSQL cluster for the whole session (unix socket only)."""
    bindir = find_bindir()
    if bindir is None:
        reason = (
            "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb, "
            "no initdb on PATH); install the `postgresql` package"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it so that no test is skipped", pytrace=False)
        pytest.skip(reason)
    with PostgresServer(bindir) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty UTF-8 database for one test, as a SQLAlchemy URL
    (postgresql+psycopg://postgres@/DBNAME?host=/socket/dir); dropped afterwards."""
    name = postgres_server.create_database(hint=request.node.name)
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """The records store under test: None for the vault's encrypted SQLite file, or the
    URL of a fresh database on a real PostgreSQL server started for the session."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def records(vault: Vault, store_url: str | None) -> Iterator[Records]:
    service = Records(vault, store_url)
    yield service
    service.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fault-injection tests run dozens of CLI processes, each with a deliberately slow
    Argon2id unlock: on a loaded 2-core machine they need more than the default 300 s."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(900))
