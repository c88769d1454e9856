"""Two devices edit the same records offline; after exchanging events, in any order and
in any batching, both projections hold exactly the same records."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from athar.crypto.identity import DeviceIdentity
from athar.records import events as ev
from athar.records import store
from athar.records.hlc import Clock
from athar.records.projection import Projection
from athar.vault.events import Event, SignedEvent, sign_event, utc_now

RECORDS = ["inc-aaaaaaaaaaaaaaaa", "inc-bbbbbbbbbbbbbbbb"]
PEOPLE = ["per-cccccccccccccccc", "per-dddddddddddddddd"]
VALUES: dict[str, list[Any]] = {
    "title.ar": ["قصف السوق", "غارة على المخبز", "مجزرة الحي الشرقي", None],
    "title.en": ["Market shelling", "Bakery strike", None],
    "grading": ["confirmed", "fair", "weak", "contested", None],
    "date": [
        {"start": "2017-03-12", "end": "2017-03-12", "precision": "day", "approximate": False},
        {"start": "2017-03-01", "end": "2017-03-31", "precision": "month", "approximate": True},
        None,
    ],
    "violations": [["attack_on_market"], ["indiscriminate_attack", "attack_on_market"], None],
    "deleted": [True, None],
}

IDENTITIES = [DeviceIdentity.generate(), DeviceIdentity.generate()]

operation = st.one_of(
    st.tuples(
        st.just("set"),
        st.sampled_from(RECORDS),
        st.sampled_from(sorted(VALUES)),
        st.integers(0, 4),
    ),
    st.tuples(
        st.just("link"),
        st.sampled_from(RECORDS),
        st.sampled_from(PEOPLE),
        st.booleans(),
    ),
)
# Milliseconds each device's wall clock moves per edit: 0 keeps stamps equal across devices
# often, so the device tie-break is exercised, and a negative step is a clock set back.
steps = st.lists(st.integers(-3, 3), min_size=1, max_size=30)


class Device:
    def __init__(self, identity: DeviceIdentity, start_ms: int) -> None:
        self.identity = identity
        self.now = start_ms
        self.clock = Clock(now_ms=lambda: self.now)
        self.dseq = 0
        self.events: list[SignedEvent] = []

    def emit(self, kind: str, body: dict[str, Any]) -> None:
        body["clock"] = self.clock.tick()
        event = Event(kind, self.identity.public_key, self.dseq, None, utc_now(), body)
        self.dseq += 1
        self.events.append(sign_event(event, self.identity))

    def run(self, ops: list[tuple[Any, ...]], moves: list[int]) -> None:
        for op, move in zip(ops, moves * (len(ops) // len(moves) + 1), strict=False):
            self.now += move
            if op[0] == "set":
                _, record, path, pick = op
                value = VALUES[path][pick % len(VALUES[path])]
                self.emit(
                    ev.RECORD_UPDATED,
                    {"id": record, "type": "incident", "fields": {path: value}},
                )
            else:
                _, record, person, present = op
                self.emit(
                    ev.RECORD_LINKED,
                    {
                        "src": record,
                        "src_type": "incident",
                        "rel": "victim",
                        "dst": person,
                        "present": present,
                        "attrs": {},
                    },
                )


def _project(folder: Path, name: str, events: list[SignedEvent], cuts: list[int]) -> dict[str, Any]:
    engine = store.sqlite_engine(folder / f"{name}.db", b"\x07" * 32)
    projection = Projection(engine, "test-vault")
    numbered = list(enumerate(events))
    start = 0
    for cut in [*sorted({c % (len(numbered) + 1) for c in cuts}), len(numbered)]:
        projection.apply(numbered[start:cut])
        start = max(start, cut)
    with engine.connect() as conn:
        state = {
            "records": conn.execute(
                text(
                    "SELECT id, type, deleted, title, date_start, data, clocks "
                    "FROM records ORDER BY id"
                )
            ).all(),
            "links": conn.execute(
                text("SELECT src, rel, dst, present, clock FROM links ORDER BY src, rel, dst")
            ).all(),
            "search": conn.execute(
                text(
                    "SELECT r.id FROM records_fts f JOIN records r ON r.rid = f.rowid "
                    "WHERE records_fts MATCH '\"السوق\"' ORDER BY r.id"
                )
            ).all(),
        }
    engine.dispose()
    return state


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops_a=st.lists(operation, min_size=1, max_size=25),
    ops_b=st.lists(operation, min_size=1, max_size=25),
    moves_a=steps,
    moves_b=steps,
    skew=st.integers(-5, 5),
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.integers(0, 100), max_size=4),
)
def test_any_exchange_order_converges(
    tmp_path_factory: Any,
    ops_a: list[tuple[Any, ...]],
    ops_b: list[tuple[Any, ...]],
    moves_a: list[int],
    moves_b: list[int],
    skew: int,
    seed: int,
    cuts: list[int],
) -> None:
    folder = tmp_path_factory.mktemp("merge")
    start = 1_790_000_000_000
    a, b = Device(IDENTITIES[0], start), Device(IDENTITIES[1], start + skew)
    for record in RECORDS:  # both devices start from the same shared records
        a.emit(
            ev.RECORD_CREATED, {"id": record, "type": "incident", "fields": {"title.ar": "حادثة"}}
        )
    b.clock.observe(a.events[-1].event.body["clock"])
    shared = list(a.events)
    a.events.clear()
    a.run(ops_a, moves_a)
    b.run(ops_b, moves_b)

    on_a = _project(folder, "a", shared + a.events + b.events, cuts)  # A receives B's
    on_b = _project(folder, "b", shared + b.events + a.events, [])  # B receives A's
    shuffled = shared + a.events + b.events
    random.Random(seed).shuffle(shuffled)
    on_c = _project(folder, "c", shuffled, cuts)  # a third device gets both, mixed up
    again = _project(folder, "d", shared + a.events + b.events + b.events + a.events, cuts)
    assert on_a == on_b == on_c == again


def test_concurrent_edit_of_one_field_is_decided_by_clock_then_device(tmp_path: Path) -> None:
    """Same millisecond on both devices: the device key decides, identically everywhere;
    the losing value stays in the history."""
    a, b = Device(IDENTITIES[0], 1_790_000_000_000), Device(IDENTITIES[1], 1_790_000_000_000)
    record = RECORDS[0]
    a.emit(ev.RECORD_CREATED, {"id": record, "type": "incident", "fields": {"title.ar": "أ"}})
    b.emit(ev.RECORD_UPDATED, {"id": record, "type": "incident", "fields": {"title.ar": "ب"}})
    assert a.events[0].event.body["clock"] == b.events[0].event.body["clock"]
    first = _project(tmp_path, "x", a.events + b.events, [])
    second = _project(tmp_path, "y", b.events + a.events, [])
    assert first == second
    winner = max(IDENTITIES, key=lambda i: i.public_key.hex()[:16])
    expected = "أ" if winner is IDENTITIES[0] else "ب"
    assert first["records"][0].title == expected


def test_malformed_events_from_a_peer_are_skipped(tmp_path: Path) -> None:
    a = Device(IDENTITIES[0], 1_790_000_000_000)
    a.emit(
        ev.RECORD_CREATED, {"id": RECORDS[0], "type": "incident", "fields": {"title.ar": "حادثة"}}
    )
    a.emit(ev.RECORD_UPDATED, {"id": RECORDS[0], "type": "spaceship", "fields": {}})
    a.emit(ev.RECORD_UPDATED, {"id": RECORDS[0], "type": "incident", "fields": "not a dict"})
    a.emit(
        ev.RECORD_LINKED, {"src": RECORDS[0], "rel": "victim", "dst": PEOPLE[0], "present": "yes"}
    )
    bad_clock = Event(
        ev.RECORD_UPDATED,
        IDENTITIES[0].public_key,
        9,
        None,
        utc_now(),
        {"id": RECORDS[0], "type": "incident", "clock": "yesterday", "fields": {}},
    )
    events = [*a.events, sign_event(bad_clock, IDENTITIES[0])]
    engine = store.sqlite_engine(tmp_path / "p.db", b"\x07" * 32)
    stats = Projection(engine, "test-vault").apply(list(enumerate(events)))
    assert (stats.applied, stats.ignored) == (1, 4)
    engine.dispose()
