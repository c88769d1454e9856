"""Human confirmation of public copies (issue 9): a copy reaches the site only after a
person confirmed it; a rejected copy never does; every decision is one signed event;
bad input is refused and leaves the ledger as it was."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from athar.errors import InputError
from athar.publish.confirm import (
    CONFIRMED,
    PENDING,
    PUBLISH_CONFIRMED,
    PUBLISH_REJECTED,
    REJECTED,
    Actor,
    confirm,
    copy_states,
    find_copy,
    reject,
    remake,
)
from athar.publish.copy import CopyOptions, copy_bytes, public_copy
from athar.publish.faces import Box
from athar.publish.site.build import SiteOptions, build_site
from athar.records.service import Records
from athar.vault.vault import Vault

REASON_AR = "وجه طفل ظاهر في الزاوية اليسرى"


@pytest.fixture
def world(vault: Vault, tmp_path: Path) -> dict[str, str]:
    """A published incident in Arabic with one photo, and a public copy kept in the vault."""
    src = tmp_path / "صورة-السوق.jpg"
    Image.fromarray(skdata.astronaut()).resize((256, 256)).save(src, quality=90)
    item = vault.add([src], "صورة من السوق").results[0].item
    assert item is not None
    with Records(vault) as records:
        incident = records.create(
            "incident",
            {"title.ar": "قصف السوق الشعبي", "date": "2017-03-14", "killed.total": "3"},
        )
        records.link(incident, "media", item.id)
    made = public_copy(vault, item.id, None, CopyOptions(faces=False, regions=(Box(0, 0, 40, 40),)))
    return {"incident": incident, "item": item.id, "copy": made["event"], "sha": made["sha256"]}


def site(vault: Vault, out: Path, world: dict[str, str]) -> dict[str, Any]:
    with Records(vault) as records:
        return build_site(records, out, SiteOptions(include=[world["incident"]]))


def media_files(out: Path) -> list[Path]:
    return sorted((out / "media").glob("*")) if (out / "media").is_dir() else []


def test_copy_is_kept_encrypted_and_reads_back(vault: Vault, world: dict[str, str]) -> None:
    state = find_copy(copy_states(vault), world["copy"][:10])
    data = copy_bytes(vault, state.copy)
    assert hashlib.sha256(data).hexdigest() == world["sha"]
    assert Image.open(io.BytesIO(data)).size == (256, 256)
    # the vault holds it encrypted: the plaintext bytes are in no file of the vault
    probe = data[200:264]
    for path in Path(vault.root).rglob("*"):
        if path.is_file():
            assert probe not in path.read_bytes(), path
    assert state.status == PENDING


def test_copy_is_not_on_the_site_until_confirmed(
    vault: Vault, world: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "site"
    summary = site(vault, out, world)
    assert summary["media"] == 0 and media_files(out) == []
    assert [u["copy"] for u in summary["unconfirmed"]] == [world["copy"]]
    before = len(vault.events())
    decision = confirm(vault, world["copy"], Actor("acct-0123456789abcdef", "publisher"))
    assert len(vault.events()) == before + 1
    last = vault.events()[-1]
    assert last.event.kind == PUBLISH_CONFIRMED and last.signature_valid()
    assert last.event.body["copy"] == world["copy"] == decision["copy"]
    assert last.event.body["user"] == "acct-0123456789abcdef"
    assert last.event.body["role"] == "publisher"
    summary = site(vault, out, world)
    assert summary["media"] == 1 and summary["unconfirmed"] == []
    [published] = media_files(out)
    assert hashlib.sha256(published.read_bytes()).hexdigest() == world["sha"]


def test_rejected_copy_never_reaches_the_site(
    vault: Vault, world: dict[str, str], tmp_path: Path
) -> None:
    reject(vault, world["copy"], REASON_AR)
    assert find_copy(copy_states(vault), world["copy"]).status == REJECTED
    before = len(vault.events())
    with pytest.raises(InputError, match="was rejected; make a new copy"):
        confirm(vault, world["copy"])
    with pytest.raises(InputError, match="already rejected"):
        reject(vault, world["copy"], "مرة أخرى")
    assert len(vault.events()) == before
    summary = site(vault, tmp_path / "site", world)
    assert summary["media"] == 0 and summary["unconfirmed"] == []
    assert media_files(tmp_path / "site") == []
    body = vault.events()[-1].event.body
    assert body["reason"] == REASON_AR and "user" not in body  # the CLI's way: the device signs


def test_rejecting_a_confirmed_copy_withdraws_it(
    vault: Vault, world: dict[str, str], tmp_path: Path
) -> None:
    confirm(vault, world["copy"])
    assert site(vault, tmp_path / "a", world)["media"] == 1
    reject(vault, world["copy"], "ظهر وجه لم يُخفَ")
    state = find_copy(copy_states(vault), world["copy"])
    assert state.status == REJECTED
    assert [d["kind"] for d in state.decisions] == [PUBLISH_CONFIRMED, PUBLISH_REJECTED]
    assert site(vault, tmp_path / "b", world)["media"] == 0


BAD: list[tuple[Callable[[Vault, str], object], str]] = [
    (lambda v, c: reject(v, c, "   "), "give a reason"),
    (lambda v, c: reject(v, c, "س" * 501), "at most 500"),
    (lambda v, c: confirm(v, "zz-not-hex"), "at least 6 hexadecimal"),
    (lambda v, c: confirm(v, "abc"), "at least 6 hexadecimal"),
    (lambda v, c: confirm(v, "0123456789"), "no public copy with id"),
    (lambda v, c: remake(v, c, Box(5000, 10, 20, 20)), "lies outside the picture"),
    (lambda v, c: remake(v, "0123456789", Box(1, 1, 2, 2)), "no public copy with id"),
]


def test_bad_input_is_refused_and_the_ledger_unchanged(vault: Vault, world: dict[str, str]) -> None:
    before = [e.id for e in vault.events()]
    for call, message in BAD:
        with pytest.raises(InputError, match=message):
            call(vault, world["copy"])
        assert [e.id for e in vault.events()] == before, message
    assert find_copy(copy_states(vault), world["copy"]).status == PENDING


def test_confirming_twice_is_refused(vault: Vault, world: dict[str, str]) -> None:
    confirm(vault, world["copy"])
    before = len(vault.events())
    with pytest.raises(InputError, match="already confirmed"):
        confirm(vault, world["copy"])
    with pytest.raises(InputError, match="only a copy awaiting confirmation"):
        remake(vault, world["copy"], Box(1, 1, 20, 20))
    assert len(vault.events()) == before


def test_remake_hides_one_more_region_and_supersedes_the_old_copy(
    vault: Vault, world: dict[str, str]
) -> None:
    made = remake(vault, world["copy"], Box(100, 100, 60, 50), Actor("acct-00aa", "admin"))
    states = {s.event: s for s in copy_states(vault)}
    old, new = states[world["copy"]], states[made["event"]]
    assert old.status == REJECTED and new.status == PENDING
    assert old.decisions[0]["superseded_by"] == made["event"]
    assert [b.to_json() for b in new.regions] == [
        {"x": 0, "y": 0, "w": 40, "h": 40},
        {"x": 100, "y": 100, "w": 60, "h": 50},
    ]
    after = np.asarray(Image.open(io.BytesIO(copy_bytes(vault, new.copy))).convert("RGB"))
    before = np.asarray(Image.open(io.BytesIO(copy_bytes(vault, old.copy))).convert("RGB"))
    inside, outside = (slice(110, 140), slice(110, 150)), (slice(180, 250), slice(180, 250))
    assert np.abs(after[inside].astype(int) - before[inside]).mean() > 5  # hidden now
    assert np.abs(after[outside].astype(int) - before[outside]).mean() < 3  # the rest kept


def test_cli_lists_confirms_rejects_and_the_site_says_what_it_skipped(
    cli: Callable[..., Any], vault: Vault, world: dict[str, str], tmp_path: Path
) -> None:
    second = public_copy(vault, world["item"], None, CopyOptions(faces=False))["event"]
    vault.close()
    listed = cli("publish", "copies", "--status", "pending", "--json")
    assert listed.exit_code == 0, listed.output
    assert {c["event"] for c in json.loads(listed.output)} == {world["copy"], second}
    out = tmp_path / "site"
    built = cli("publish", "site", "--out", str(out), "--include", world["incident"])
    assert built.exit_code == 0, built.output
    assert "Skipped public copy" in built.output and "no one has confirmed it" in built.output
    assert cli("publish", "copies", "--status", "maybe").exit_code == 2
    rejected = cli("publish", "reject", second[:12], "--reason", REASON_AR)
    assert rejected.exit_code == 0 and "never be published" in rejected.output
    assert cli("publish", "reject", world["copy"][:12], "--reason", "").exit_code == 2
    done = cli("publish", "confirm", world["copy"][:12], "--json")
    assert done.exit_code == 0 and json.loads(done.output)["kind"] == PUBLISH_CONFIRMED
    assert cli("publish", "confirm", world["copy"][:12]).exit_code == 2  # twice
    built = cli("publish", "site", "--out", str(out), "--include", world["incident"], "--json")
    assert json.loads(built.output)["media"] == 1
    statuses = {
        c["event"]: c["status"] for c in json.loads(cli("publish", "copies", "--json").output)
    }
    assert statuses == {world["copy"]: CONFIRMED, second: REJECTED}


def test_webp_and_png_copies_are_kept_and_shown(vault: Vault, world: dict[str, str]) -> None:
    """A WebP copy was refused as "still carries metadata" (Pillow's animation defaults)."""
    for suffix, fmt in ((".webp", "WEBP"), (".png", "PNG")):
        made = public_copy(vault, world["item"], None, CopyOptions(faces=False), suffix=suffix)
        data = copy_bytes(vault, find_copy(copy_states(vault), made["event"]).copy)
        assert Image.open(io.BytesIO(data)).format == fmt
