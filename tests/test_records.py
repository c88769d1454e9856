"""Records: create, edit, link, search, history, rebuild — on the embedded encrypted store
and on a real PostgreSQL server (the `records` fixture runs each test on both)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from athar.errors import AtharError, InputError
from athar.records import ids
from athar.records.search import Filters
from athar.records.service import Records
from athar.vault.vault import Vault


def _incident(records: Records) -> tuple[str, str, str, str]:
    source = records.create(
        "source",
        {
            "type": "witness",
            "name": "أبو أحمد",
            "reliability": "B",
            "credibility": "2",
            "protection": "confidential",
            "contact": "+963 944 000 000",
        },
    )
    incident = records.create(
        "incident",
        {
            "title.ar": "قصف سوق دوما الشعبي",
            "description.ar": "سقطت ثلاث قذائف على السوق وقت الذروة.",
            "date": "2017-03-12",
            "place.name_ar": "دوما",
            "place.name_latin": "Douma",
            "place.admin_area": "ريف دمشق",
            "place.coordinates": "33.5711,36.4022,100",
            "violations": "استهداف سوق، هجوم عشوائي",
            "weapons": "airstrike",
            "killed.children": "2-3",
            "killed.total": "10-12",
            "grading": "fair",
        },
    )
    first = records.create(
        "person",
        {
            "name_ar.given": "مُحَمَّد",
            "name_ar.father": "أحمد",
            "name_ar.family": "الحلبي",
            "age": "12",
        },
    )
    second = records.create("person", {"name_ar.full": "فاطمة علي", "sex": "أنثى"})
    for person in (first, second):
        records.link(incident, "victim", person)
        records.create("status", {"person": person, "status": "killed", "date": "2017-03-12"})
    records.link(incident, "source", source)
    return incident, first, second, source


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


def test_incident_with_victims_and_source(records: Records) -> None:
    incident, first, second, source = _incident(records)
    view = records.get(incident)
    assert view.type == "incident"
    assert view.data["killed.total"] == {"min": 10, "max": 12}
    assert view.data["violations"] == ["attack_on_market", "indiscriminate_attack"]
    assert view.data["date"]["precision"] == "day"
    assert {(lk["rel"], lk["dst"]) for lk in view.links} == {
        ("victim", first),
        ("victim", second),
        ("source", source),
    }
    person = records.get(first[:8])  # a unique prefix is enough
    assert person.id == first
    assert [c["fields"]["status"] for c in person.children] == ["killed"]
    assert records.counts() == {"incident": 1, "person": 2, "source": 1, "status": 2}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("محمد", "first"),  # no diacritics in the query, shadda and harakat in the record
        ("محمّد", "first"),
        ("مُحَمَّد", "first"),
        ("حلبي", "first"),  # without the article
        ("الحلبي", "first"),
        ("فاطمه", "second"),  # ta marbuta typed as ha
        ("فاطمة", "second"),
        ("دوما", "incident"),
        ("DOUMA", "incident"),
        ("قصف جوي", "incident"),  # a vocabulary label, in Arabic
        ("airstrike", "incident"),
        ("سوق الشعبي", "incident"),
        ("قذائف", "incident"),
    ],
)
def test_arabic_aware_search(records: Records, query: str, expected: str) -> None:
    incident, first, second, _ = _incident(records)
    want = {"first": first, "second": second, "incident": incident}[expected]
    assert want in _ids(records.find(query))


def test_search_misses_and_private_fields(records: Records) -> None:
    _incident(records)
    assert records.find("حمص") == []
    assert records.find("944") == []  # the source's contact is private: not indexed
    assert records.find("احم*") != []  # a prefix
    with pytest.raises(InputError):
        records.find("  ؟!  ")


def test_filters(records: Records) -> None:
    incident, first, second, _ = _incident(records)
    records.create(
        "incident",
        {
            "title.en": "Shelling of Aleppo",
            "date": "2016-12",
            "violations": "shelling" if False else "indiscriminate_attack",
        },
    )
    assert _ids(
        records.find(None, Filters(type="incident", date_from="2017-03", date_to="2017-03"))
    ) == [incident]
    assert len(records.find(None, Filters(type="incident", date_from="2016"))) == 2
    assert _ids(records.find(None, Filters(type="incident", violation="استهداف سوق"))) == [incident]
    assert _ids(records.find(None, Filters(place="ريف دمشق"))) == [incident]
    assert set(_ids(records.find(None, Filters(type="person", status="قتيل")))) == {first, second}
    assert records.find(None, Filters(type="person", status="detained")) == []
    assert _ids(records.find("قصف", Filters(date_to="2016-12-31"))) != [incident]


def test_edit_clear_and_history(records: Records) -> None:
    incident, *_ = _incident(records)
    assert records.update(
        incident, {"title.en": "Shelling of Douma market", "grading": "confirmed"}
    )
    assert not records.update(incident, {"grading": "confirmed"})  # nothing changed
    assert records.update(incident, {"description.ar": ""})  # cleared
    view = records.get(incident)
    assert "description.ar" not in view.data
    assert view.data["grading"] == "confirmed"
    entries = records.history(incident)
    kinds = [e["kind"] for e in entries]
    assert kinds[0] == "record.created" and kinds.count("record.updated") == 2
    created = entries[0]["fields"]
    assert created["grading"] == {"value": "fair", "current": False}
    assert created["title.ar"]["current"] is True
    assert entries[-1]["fields"]["description.ar"] == {"value": None, "current": True}
    assert records.find("Shelling")


def test_delete_and_restore(records: Records) -> None:
    incident, *_ = _incident(records)
    assert records.delete(incident)
    assert not records.delete(incident)
    assert incident not in _ids(records.find("دوما"))
    assert records.get(incident).deleted
    assert records.delete(incident, restore=True)
    assert incident in _ids(records.find("دوما"))


BAD_INPUT = [
    ("incident", {"title.ar": "x", "date": "2017-02-30"}, "not a real date"),
    ("incident", {"title.ar": "x", "date": "12/13/2017"}, "not a real date"),
    ("incident", {"title.ar": "x", "date": "next week"}, "cannot read the date"),
    ("incident", {"title.ar": "x", "date": "2017-03-12/2017-03-01"}, "before it starts"),
    ("incident", {"title.ar": "x", "date": "2999"}, "in the future"),
    ("incident", {"title.ar": "x", "killed.total": "5-2"}, "less than the minimum"),
    ("incident", {"title.ar": "x", "killed.total": "-3"}, "count or a range"),
    ("incident", {"title.ar": "x", "killed.total": "3", "killed.children": "5"}, "add up"),
    ("incident", {"title.ar": "x", "violations": "unicorns"}, "not a term"),
    ("incident", {"title.ar": "x", "place.coordinates": "95,40"}, "latitude"),
    ("incident", {"title.ar": "x", "place.coordinates": "33,200"}, "longitude"),
    ("incident", {"title.ar": "x", "place.coordinates": "here"}, "latitude,longitude"),
    ("incident", {"title.ar": "x", "colour": "red"}, "has no field"),
    ("incident", {"description.ar": "no title"}, "needs one of"),
    ("person", {"sex": "male"}, "needs one of"),
    ("person", {"name_ar.given": "علي", "age": "250"}, "outside"),
    ("person", {"name_ar.given": "علي", "age": "twelve"}, "whole number"),
    ("status", {"person": "per-aaaaaaaaaaaaaaaa", "status": "killed"}, "there is no person"),
    ("status", {"person": "inc-aaaaaaaaaaaaaaaa", "status": "killed"}, "not the id of a person"),
    ("source", {"type": "witness", "name": "a\x00b"}, "NUL"),
    ("spaceship", {"name": "x"}, "unknown record type"),
]


@pytest.mark.parametrize(("kind", "raw", "message"), BAD_INPUT)
def test_bad_input_is_refused_and_changes_nothing(
    records: Records, kind: str, raw: dict[str, str], message: str
) -> None:
    records.create("person", {"name_ar.full": "علي"})
    size, counts = records.vault.ledger.size(), records.counts()
    with pytest.raises(InputError) as caught:
        records.create(kind, raw)
    assert message in str(caught.value)
    assert records.vault.ledger.size() == size
    assert records.counts() == counts


def test_bad_edits_and_links(records: Records) -> None:
    incident, first, _, source = _incident(records)
    size = records.vault.ledger.size()
    with pytest.raises(InputError, match="add up"):
        records.update(incident, {"killed.children": "20"})  # more than the total allows
    with pytest.raises(InputError, match="needs one of"):
        records.update(incident, {"title.ar": ""})  # the only title
    with pytest.raises(InputError, match="cannot be linked as"):
        records.link(first, "victim", incident)
    with pytest.raises(InputError, match="not a person record"):
        records.link(incident, "victim", source)
    with pytest.raises(InputError, match="no record"):
        records.get("per-zzzzzz")
    with pytest.raises(InputError, match="at least"):
        records.get("per")
    assert records.vault.ledger.size() == size


def test_organisation_vocabulary_term(records: Records) -> None:
    records.add_term("weapon", "thermobaric_rocket", "صاروخ فراغي", "Thermobaric rocket")
    incident = records.create("incident", {"title.ar": "قصف", "weapons": "صاروخ فراغي"})
    assert records.get(incident).data["weapons"] == ["thermobaric_rocket"]
    records.rebuild()
    assert records.vocab.resolve("weapon", "Thermobaric rocket") == "thermobaric_rocket"
    with pytest.raises(InputError):
        records.add_term("weapon", "Bad Id!", "x", "y")
    with pytest.raises(InputError):
        records.add_term("colours", "red", "أحمر", "red")


def _dump(records: Records) -> dict[str, Any]:
    """Everything the projection holds, independent of internal row numbers."""
    with records.engine.connect() as conn:
        rec = conn.execute(
            text(
                "SELECT id, type, deleted, title, date_start, date_end, place, admin_area, lat, "
                "lon, status, parent, created, updated, author, data, clocks "
                "FROM records ORDER BY id"
            )
        ).all()
        rid_to_id = dict(conn.execute(text("SELECT rid, id FROM records")).all())
        terms = sorted(
            (rid_to_id[r], v, t)
            for r, v, t in conn.execute(text("SELECT rid, vocabulary, term FROM terms"))
        )
        links = conn.execute(text("SELECT * FROM links ORDER BY src, rel, dst")).all()
        hist = conn.execute(
            text("SELECT record, seq, clock, device, kind FROM history ORDER BY record, seq, clock")
        ).all()
        vocab = conn.execute(text("SELECT * FROM vocab_terms ORDER BY vocabulary, term")).all()
    return {
        "records": [tuple(r) for r in rec],
        "terms": terms,
        "links": [tuple(r) for r in links],
        "history": [tuple(r) for r in hist],
        "vocab": [tuple(r) for r in vocab],
    }


def test_rebuild_yields_identical_content(records: Records) -> None:
    incident, first, _, _ = _incident(records)
    records.update(incident, {"title.en": "Douma market", "description.ar": ""})
    records.link(incident, "victim", first, present=False)
    records.delete(first)
    records.add_term("violation", "water_cut", "قطع المياه", "Cutting water")
    before = _dump(records)
    searches = {q: records.find(q) for q in ("دوما", "فاطمه", "market")}
    stats = records.rebuild()
    assert stats.applied == records.vault.ledger.size() - 1  # all but vault.created
    assert _dump(records) == before
    assert {q: records.find(q) for q in searches} == searches


def test_projection_catches_up_after_a_crash(vault: Vault, store_url: str | None) -> None:
    """Events committed to the ledger but never projected (a crash between the two) are
    applied the next time the records are opened."""
    with Records(vault, store_url) as records:
        incident, *_ = _incident(records)
        body = records.prepare_update(incident, {"title.en": "after the crash"})
        assert body is not None
        with vault.ledger.transaction() as tx:  # ledger only, as if killed right after
            tx.append("record.updated", body)
        assert "title.en" not in records.get(incident).data
    with Records(vault, store_url) as records:
        assert records.get(incident).data["title.en"] == "after the crash"


def test_server_store_of_another_vault_is_refused(
    tmp_path: Any, vault: Vault, postgres_url: str
) -> None:
    """(The embedded store is keyed by its own vault: see the next test.)"""
    Records(vault, postgres_url).close()
    other = Vault.create(tmp_path / "other", "another passphrase")
    with pytest.raises(AtharError, match="another vault"):
        Records(other, postgres_url)
    other.close()


def test_embedded_store_is_encrypted(vault: Vault) -> None:
    with Records(vault) as records:
        _incident(records)
        records.update(records.find("دوما")[0]["id"], {"note": "UNIQUE-PLAINTEXT-MARKER"})
    for path in vault.root.iterdir():
        if path.name.startswith("records.db"):
            data = path.read_bytes()
            assert b"SQLite format 3" not in data
            for secret in ("UNIQUE-PLAINTEXT-MARKER", "دوما", "الحلبي", "Douma"):
                assert secret.encode() not in data, (path.name, secret)
    # and a wrong key cannot open it
    from athar.records import store

    engine = store.sqlite_engine(vault.root / store.FILE_NAME, b"\x01" * 32)
    with pytest.raises(AtharError, match="cannot be opened"):
        engine.connect()


def test_record_ids() -> None:
    made = ids.new_id("incident")
    assert ids.is_record_id(made) and ids.type_of(made) == "incident"
    assert ids.derived_id("person", "VDC-1") == ids.derived_id("person", "VDC-1")
    assert ids.derived_id("person", "VDC-1") != ids.derived_id("person", "VDC-2")
    assert not ids.is_record_id("inc-XYZ")


def test_cli_session(cli: Any) -> None:
    """The README's short session: an incident in Arabic, two victims, a source, search,
    GeoJSON export."""
    assert cli("init").exit_code == 0

    def new(*args: str) -> str:
        result = cli("new", *args, "--json")
        assert result.exit_code == 0, result.output
        return str(json.loads(result.output)["id"])

    source = new("source", "type=witness", "name=أبو أحمد", "reliability=B", "credibility=2")
    incident = new(
        "incident",
        "title.ar=قصف سوق دوما",
        "date=2017-03-12",
        "place.name_ar=دوما",
        "place.coordinates=33.5711,36.4022",
        "violations=استهداف سوق",
        "killed.total=2",
    )
    for name in ("name_ar.full=مُحَمَّد أحمد الحلبي", "name_ar.full=فاطمة علي"):
        person = new("person", name)
        assert cli("relate", incident, "victim", person).exit_code == 0
    assert cli("relate", incident, "source", source).exit_code == 0
    found = json.loads(cli("search", "محمد", "--json").output)
    assert [r["type"] for r in found] == ["person"]
    shown = cli("show", incident)
    assert shown.exit_code == 0 and "دوما" in shown.output and "victim" in shown.output
    geo = json.loads(cli("export", "--format", "geojson").output)
    assert geo["type"] == "FeatureCollection"
    assert geo["features"][0]["geometry"]["coordinates"] == [36.4022, 33.5711]
    bad = cli("new", "incident", "title.ar=x", "date=2017-02-30", env={"ATHAR_LANG": "ar"})
    assert bad.exit_code == 2 and "ليس تاريخاً حقيقياً" in bad.output
    history = cli("history", incident)
    assert history.exit_code == 0 and "record.created" in history.output
    assert cli("rebuild", "--json").exit_code == 0


def test_store_from_schema_0001_is_migrated_keeping_its_history(
    vault: Vault, store_url: str | None
) -> None:
    """A store written by the first schema (history keyed by record) is upgraded in place
    on open: same rows, history still found by record."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    from athar.records import store

    with Records(vault, store_url) as first:
        person = first.create("person", {"name_ar.given": "خالد", "name_ar.family": "العمر"})
        first.update(person, {"age": "40"})
        before = first.history(person)
        config = Config()
        config.set_main_option("script_location", str(Path(store.__file__).parent / "migrations"))
        with first.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0001")
        assert store.current_revision(first.engine) == "0001"
    with Records(vault, store_url) as again:
        assert store.current_revision(again.engine) == store.SCHEMA_HEAD
        assert again.history(person) == before
        assert [h["kind"] for h in before] == ["record.created", "record.updated"]
        assert again.get(person).data["age"] == 40


def test_the_store_binds_none_and_bool_through_its_own_adapters() -> None:
    """The embedded store registers adapters for None and bool (the driver's fallback
    probe costs ~2 µs per value); what they bind must be what SQLite would get anyway."""
    import sqlcipher3

    from athar.records import store

    assert sqlcipher3.adapters[(type(None), sqlcipher3.PrepareProtocol)] is store._null
    assert sqlcipher3.adapters[(bool, sqlcipher3.PrepareProtocol)] is int
    conn = sqlcipher3.connect(":memory:")
    conn.execute("CREATE TABLE t (n, flag, name)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(None, True, "مُحَمَّد"), (None, False, None)])
    assert conn.execute("SELECT typeof(n), typeof(flag), flag, name FROM t").fetchall() == [
        ("null", "integer", 1, "مُحَمَّد"),
        ("null", "integer", 0, None),
    ]
    assert conn.execute(
        "SELECT count(*) FROM t WHERE n IS NULL AND flag = ?", (True,)
    ).fetchone() == (1,)
