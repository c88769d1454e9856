"""The PostgreSQL fixtures start a real server and hand each test its own database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
import sqlalchemy as sa

from pgserver import PostgresServer

NAME = "مُحَمَّد"


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(postgres_url)
    yield eng
    eng.dispose()


def test_url_form(postgres_server: PostgresServer, postgres_url: str) -> None:
    url = sa.make_url(postgres_url)
    assert url.drivername == "postgresql+psycopg"
    assert url.username == "postgres"
    assert url.host is None
    assert url.query["host"] == str(postgres_server.socket_dir)


def test_version_and_encoding(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version()")).startswith("PostgreSQL ")
        assert conn.scalar(sa.text("SHOW server_encoding")) == "UTF8"


def test_arabic_round_trip(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (id serial PRIMARY KEY, name text NOT NULL)"))
        conn.execute(sa.text("INSERT INTO people (name) VALUES (:n)"), {"n": NAME})
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT name FROM people")) == NAME
        assert conn.scalar(sa.text("SELECT length(name) FROM people")) == len(NAME)


def test_arabic_full_text_search(engine: sa.Engine) -> None:
    query = "SELECT to_tsvector('simple', 'محمد علي') @@ plainto_tsquery('simple', 'محمد')"
    miss = "SELECT to_tsvector('simple', 'محمد علي') @@ plainto_tsquery('simple', 'أحمد')"
    with engine.connect() as conn:
        assert conn.scalar(sa.text(query)) is True
        assert conn.scalar(sa.text(miss)) is False


class TestIsolation:
    """Each test gets its own database: what one creates, the other does not see."""

    names: ClassVar[set[str]] = set()

    @pytest.mark.parametrize("side", ["first", "second"])
    def test_distinct_databases(self, engine: sa.Engine, side: str) -> None:
        with engine.begin() as conn:
            db = conn.scalar(sa.text("SELECT current_database()"))
            assert db not in self.names
            self.names.add(db)
            assert not sa.inspect(conn).has_table("only_here")
            conn.execute(sa.text("CREATE TABLE only_here (side text)"))
            conn.execute(sa.text("INSERT INTO only_here VALUES (:s)"), {"s": side})


def test_databases_are_dropped(postgres_server: PostgresServer) -> None:
    name = postgres_server.create_database("probe")
    held = postgres_server.connect(name)  # an open connection must not block the drop
    try:
        postgres_server.drop_database(name)
    finally:
        held.close()
    with postgres_server.connect() as admin:
        left = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
        assert left.fetchone() == (0,)
