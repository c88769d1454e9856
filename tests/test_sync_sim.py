"""Three devices edit the same records offline and exchange bundles in random order,
with duplicates and losses; once everything has been delivered they hold identical
records (hypothesis drives the schedule)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from athar.records.service import Records
from athar.sync import service
from athar.vault.vault import Vault

NAMES = ["محمد الحلبي", "مُحَمَّد", "فاطمة علي", "أحمد", "Muhammad al-Halabi", "Fatima"]
FIELDS = ["name_ar.full", "name_latin.full"]

edit = st.tuples(
    st.just("edit"),
    st.integers(0, 2),
    st.integers(0, 1),
    st.sampled_from(FIELDS),
    st.sampled_from(NAMES),
)
send = st.tuples(
    st.just("send"),
    st.integers(0, 2),
    st.integers(0, 2),
    st.sampled_from(["deliver", "lose", "twice"]),
    st.booleans(),
)


def snapshot(v: Vault, ids: list[str]) -> list[dict[str, Any]]:
    with Records(v) as r:
        return [{k: r.get(i).to_json()[k] for k in ("fields", "deleted")} for i in ids]


def exchange(src: Vault, dst: Vault, out: Path, times: int = 1) -> None:
    files = service.export_bundle(
        src, [service.card(dst)["age_recipient"]], out, since=0, part_size=16384, redundancy=0.5
    ).files
    for _ in range(times):
        service.import_bundles(dst, files[1:])  # one part lost: redundancy covers it


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.one_of(edit, send), min_size=4, max_size=10))
def test_three_devices_converge(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vs = [Vault.create(root / f"d{i}", "سر") for i in range(3)]
        try:
            for v in vs:
                for other in vs:
                    if other is not v:
                        c = service.card(other)
                        service.enrol(v, c["key"], c["age_recipient"], other.root.name, False)
            with Records(vs[0]) as r:
                ids = [r.create("person", {"name_ar.full": n}) for n in NAMES[:2]]
            for dst in vs[1:]:
                exchange(vs[0], dst, root / f"init-{dst.root.name}")
            n = 0
            for op in ops:
                n += 1
                if op[0] == "edit":
                    _, dev, rec, field, value = op
                    with Records(vs[dev]) as r:
                        r.update(ids[rec], {field: value})
                else:
                    _, src, dst, fate, _ = op
                    if src == dst or fate == "lose":
                        continue
                    exchange(vs[src], vs[dst], root / f"b{n}", 2 if fate == "twice" else 1)
            for _ in range(2):  # everything delivered at last, in both directions
                for src in vs:
                    for dst in vs:
                        if src is not dst:
                            n += 1
                            exchange(src, dst, root / f"f{n}")
            first = snapshot(vs[0], ids)
            assert snapshot(vs[1], ids) == first
            assert snapshot(vs[2], ids) == first
        finally:
            for v in vs:
                v.close()
