"""A short fuzzing campaign in every test run (issue 10): each parser of outside input
(CSV import, record values and their written form, checkpoint notes and files, proof
files, ledger entries, images) gets random and mutated inputs and must answer with a
clear error or a value, never crash. fuzz/run.py runs the long campaign."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from athar.errors import IntegrityError
from athar.vault import checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))

import fuzz_targets
import run as fuzz_run

# Examples per target: about 25 s for all of them on a busy two-core machine.
BUDGET = {
    "csv-import": 120,
    "record-values": 300,
    "checkpoint-note": 250,
    "checkpoint-file": 80,
    "proof-file": 80,
    "event-entry": 300,
    "image-decode": 150,
}


def test_every_target_has_a_budget() -> None:
    assert set(BUDGET) == set(fuzz_targets.targets())


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_parser_never_crashes(name: str) -> None:
    target = fuzz_targets.targets()[name]

    @settings(
        max_examples=BUDGET[name],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy)
    def one(value: object) -> None:
        target.check(value)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one()


def test_the_seeds_are_valid_inputs() -> None:
    """Mutations start from inputs the parsers accept, or the fuzzer never gets deep."""
    cp = fuzz_targets._checkpoint_seed()
    assert checkpoint.open_note(cp.note, cp.verifier_key).checkpoint.size == 7
    for entry in fuzz_targets._event_seeds():
        fuzz_targets._event(entry)
    for image in fuzz_targets._image_seeds():
        fuzz_targets._image(image)
    _, _, proof = fuzz_targets._vault_and_records()
    fuzz_targets._proof(proof)


def test_found_by_fuzzing_non_ascii_signature_in_a_checkpoint_note() -> None:
    """open_note raised a bare ValueError (not an AtharError) for a signature line with
    non-ASCII bytes; it is now skipped like any other unreadable signature."""
    cp = fuzz_targets._checkpoint_seed()
    body, _, sig = cp.note.partition("\n\n")
    broken = body + "\n\n" + sig.replace(sig.split(" ")[-1][:4], "ظظ", 1)
    with pytest.raises(IntegrityError, match="does not verify"):
        checkpoint.open_note(broken, cp.verifier_key)


def test_the_campaign_runner_counts_inputs_and_writes_stats(tmp_path: Path) -> None:
    stats = fuzz_run.campaign(["event-entry", "record-values"], 2.0, tmp_path, seed=7)
    saved = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(stats))
    for name in ("event-entry", "record-values"):
        assert saved["targets"][name]["inputs"] > 20
        assert saved["targets"][name]["crashes"] == 0
    assert list((tmp_path / "crashes").iterdir()) == []
