"""A short fuzzing campaign in every test run (issue 10): each parser of outside input
(CSV import, record values and their written form, checkpoint notes and files, proof
files, ledger entries, images, bundle parts, whole bundles, receipts, ProofMode zips)
gets random and mutated inputs and must answer with a clear error or a value, never
crash; a refused bundle must leave the vault as it was. fuzz/run.py runs the long
campaign."""

from __future__ import annotations

import io
import json
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from athar.errors import InputError, IntegrityError
from athar.vault import checkpoint, events, proofs
from athar.verify import proofmode

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
    "bundle-parts": 150,
    "bundle-file": 200,
    "receipt": 400,
    "proofmode-zip": 200,
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
    sender, receiver, seeds = fuzz_targets._sync_pair()
    held = receiver.ledger.size()
    assert held > sender.ledger.size()  # the bundle was imported: its events and receipts
    fuzz_targets._parts(seeds["parts"])
    fuzz_targets._parts(seeds["parts"][1:])  # one part short: parity makes up for it
    fuzz_targets._bundle(("age", seeds["bundle"]))
    fuzz_targets._bundle(("tar", seeds["tar"]))
    assert receiver.ledger.size() == held  # a replay: nothing new, nothing twice
    fuzz_targets._receipt(seeds["receipt"])
    fuzz_targets._receipt(seeds["short"])
    files = fuzz_targets._proofmode_files()
    assert proofmode.check(proofmode.read_zip(fuzz_targets._zip(files))).ok


def test_found_by_fuzzing_non_ascii_signature_in_a_checkpoint_note() -> None:
    """open_note raised a bare ValueError (not an AtharError) for a signature line with
    non-ASCII bytes; it is now skipped like any other unreadable signature."""
    cp = fuzz_targets._checkpoint_seed()
    body, _, sig = cp.note.partition("\n\n")
    broken = body + "\n\n" + sig.replace(sig.split(" ")[-1][:4], "ظظ", 1)
    with pytest.raises(IntegrityError, match="does not verify"):
        checkpoint.open_note(broken, cp.verifier_key)


@pytest.mark.parametrize(
    ("length", "block", "k"), [((1 << 64) - 1, 0, 1), (1 << 62, 16, 2), (1 << 40, 16, 2)]
)
def test_found_by_fuzzing_parts_claiming_more_bytes_than_their_blocks_hold(
    length: int, block: int, k: int
) -> None:
    """Parts whose hashes agree with their bundle id (nothing in a part is signed, anyone
    can compute them) claimed a length far beyond their blocks: assembling extended the
    output to it, a bare OverflowError past 2**63 (and a huge sparse file below). They
    are now refused as damaged parts, and nothing is committed."""
    _, receiver, _ = fuzz_targets._sync_pair()
    before = receiver.ledger.size()
    forged = fuzz_targets._forged_parts(length, block, k, 1, list(range(k + 1)))
    with pytest.raises(IntegrityError, match="not a whole Athar bundle part"):
        fuzz_targets._parts(forged)
    assert receiver.ledger.size() == before
    assert not any(receiver.blobs.tmp_dir.iterdir())


@pytest.mark.parametrize(
    ("manifest", "why"),
    [
        ([], "not an Athar bundle"),
        ("بيان", "not an Athar bundle"),
        (b"[" * 100_000, "damaged or truncated"),
        (b'{"type":' * 50_000, "damaged or truncated"),
    ],
)
def test_found_by_fuzzing_a_bundle_manifest_that_is_not_an_object(
    manifest: object, why: str
) -> None:
    """Anyone can encrypt to a device's public age key, so the tar under the encryption
    is outside input. A manifest that was JSON but not an object raised AttributeError,
    and one nested deeper than Python's recursion limit a RecursionError; both are now
    refused as damaged bundles, and nothing is committed (the target checks the vault)."""
    with pytest.raises(IntegrityError, match=why):
        fuzz_targets._bundle(("tar", fuzz_targets._tar_with_manifest(manifest)))


def test_found_by_fuzzing_deeply_nested_json_in_entries_checkpoints_and_proofs(
    tmp_path: Path,
) -> None:
    """json.loads raises RecursionError (not a ValueError) past ~1,000 levels: a ledger
    entry (found by the bundle target through events.jsonl), a checkpoint file and a
    proof file that deep crashed their readers; all three are now clear refusals."""
    deep = "[" * 100_000
    with pytest.raises(IntegrityError, match="not a well-formed signed event"):
        events.parse_entry(deep.encode())
    with pytest.raises(IntegrityError, match="not a well-formed signed event"):
        events.parse_essentials(deep.encode())
    path = tmp_path / "نقطة-تحقق.json"
    path.write_text(deep, encoding="utf-8")
    with pytest.raises(InputError, match="not an Athar checkpoint file"):
        checkpoint.load_checkpoint_file(path)
    with pytest.raises(InputError, match="not a proof file"):
        proofs.load_proof(path)


def test_found_by_fuzzing_a_deeply_nested_proof_in_a_proofmode_zip() -> None:
    """A ProofMode zip's .proof.json nested past the recursion limit crashed check()
    with RecursionError; the proof is now unreadable, so the media's proof (named but
    saying nothing) is judged a mismatch and the zip is not valid."""
    files = dict(fuzz_targets._proofmode_files())
    name = next(n for n in files if n.endswith(".proof.json"))
    files[name] = b"[" * 100_000
    report = proofmode.check(proofmode.read_zip(fuzz_targets._zip(files)))
    assert not report.ok
    assert [f.proof for f in report.files] == ["mismatch"]


def _damaged_zip(how: str) -> bytes:
    media = "صورة من حلب".encode() * 50
    data = bytearray(fuzz_targets._zip({"IMG_حلب.jpg": media}, zipfile.ZIP_DEFLATED))
    central = data.index(b"PK\x01\x02")
    if how == "version":  # version needed to extract: 12.2
        data[central + 6] = 122
    elif how == "encrypted":  # general purpose flag bit 0, in the central directory
        data[central + 8] |= 1
    else:  # the deflate stream itself: an invalid block type
        info = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0]
        start = 30 + len(info.filename.encode())
        data[start : start + info.compress_size] = b"\xff" * info.compress_size
    return bytes(data)


@pytest.mark.parametrize("how", ["version", "encrypted", "deflate"])
def test_found_by_fuzzing_zips_that_zipfile_refuses_with_other_errors(how: str) -> None:
    """zipfile answers an unknown zip version with NotImplementedError, an encrypted
    entry with RuntimeError and a damaged deflate stream with zlib.error; read_zip let
    all three through (the 4-minute campaign hit them 58 times). Now: clear refusals."""
    with pytest.raises(InputError, match=r"not a readable zip|is damaged"):
        proofmode.read_zip(_damaged_zip(how))


def test_the_campaign_runner_counts_inputs_and_writes_stats(tmp_path: Path) -> None:
    stats = fuzz_run.campaign(["event-entry", "record-values"], 2.0, tmp_path, seed=7)
    saved = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(stats))
    for name in ("event-entry", "record-values"):
        assert saved["targets"][name]["inputs"] > 20
        assert saved["targets"][name]["crashes"] == 0
    assert list((tmp_path / "crashes").iterdir()) == []
