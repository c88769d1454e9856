"""Fuzz targets: every parser of input that comes from outside the vault.

Each target is a hypothesis strategy (random bytes, plus mutations of valid seeds so that
the fuzzer gets past the first checks) and a function that feeds one input to the parser.
The contract under test: the parser returns, or raises one of the *expected* errors (an
AtharError with a message for the user, or the records layer's Problem); anything else
(KeyError, IndexError, RecursionError, a Pillow exception, a hang) is a crash.

Used by tests/test_fuzz.py (a short campaign in every test run) and fuzz/run.py (a long
campaign with counts and crash files).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from PIL import Image

from athar.crypto.identity import DeviceIdentity
from athar.errors import AtharError
from athar.records import csvimport, schema, vocab
from athar.records.formats import value_text
from athar.records.service import Records
from athar.records.validate import parse_value
from athar.records.values import Problem
from athar.vault import checkpoint, events, proofs
from athar.vault.vault import Vault
from athar.verify import imagedecode

PASSPHRASE = "عبارة مرور للاختبار العشوائي"  # noqa: S105 (a throwaway test vault)


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    run: Callable[[Any], None]
    expected: tuple[type[BaseException], ...] = (AtharError,)

    def check(self, value: Any) -> None:
        """Feed one input; expected errors are swallowed, a crash propagates."""
        with contextlib.suppress(*self.expected):
            self.run(value)


# -- mutation of valid seeds -----------------------------------------------------------

_OPS = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=8)),
    min_size=1,
    max_size=6,
)
_INTERESTING = [b"\x00", b"\xff", b'"', b",", b"\n", b"\r", b"{", b"[", b"-", b"9" * 30, b"\xd9"]


def _mutate(seed: bytes, ops: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(seed)
    for op, pos, chunk in ops:
        at = pos % (len(data) + 1)
        if op == 0 and data:  # flip bits of one byte
            data[at % len(data)] ^= chunk[0] or 1
        elif op == 1:  # delete a run
            del data[at : at + 1 + chunk[0] % 16]
        elif op == 2:  # insert random bytes
            data[at:at] = chunk
        elif op == 3:  # insert a byte that parsers care about
            data[at:at] = _INTERESTING[chunk[0] % len(_INTERESTING)]
        else:  # duplicate a slice (repeated fields, lines, chunks)
            data[at:at] = data[at : at + 1 + chunk[0] % 64]
    return bytes(data)


def mutations(seeds: list[bytes], max_random: int = 1024) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=max_random),
        st.sampled_from(seeds),
        st.builds(_mutate, st.sampled_from(seeds), _OPS),
    )


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["", "٣", "0" * 40, "AAAA", "—", "athar.vault/00"]),
)
json_values = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _replace_keys(doc: dict[str, Any], changes: list[tuple[str, Any, bool]]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(doc))
    for path, value, delete in changes:
        node: Any = out
        parts = path.split(".")
        for p in parts[:-1]:
            node = node.get(p) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue  # an earlier change replaced the parent
        if delete:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return out


def json_mutations(doc: dict[str, Any], paths: list[str]) -> st.SearchStrategy[Any]:
    change = st.tuples(st.sampled_from(paths), json_values, st.booleans())
    return st.one_of(
        json_values,
        st.builds(_replace_keys, st.just(doc), st.lists(change, min_size=1, max_size=3)),
    )


# -- valid seeds, made once per process --------------------------------------------------


@cache
def _workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="athar-fuzz-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@cache
def _identity() -> DeviceIdentity:
    return DeviceIdentity.generate()


@cache
def _vault_and_records() -> tuple[Any, Any, dict[str, Any]]:
    """A real vault with one item, its records service, and a real proof of the item."""
    root = _workdir() / "vault"
    vault = Vault.create(root, PASSPHRASE)
    item_file = _workdir() / "شهادة.txt"
    item_file.write_text("شهادة قصيرة\n", encoding="utf-8")
    vault.add([item_file])
    vault.checkpoint()
    proof = vault.prove(vault.items()[0])
    records = Records(vault)
    atexit.register(vault.close)
    return vault, records, proof


def _event_seeds() -> list[bytes]:
    ident = _identity()
    out = []
    for kind, body in (
        ("item.added", {"sha256": "ab" * 32, "size": 3, "name": "صورة.jpg"}),
        ("record.created", {"id": "per-1", "values": {"name_ar.full": "سمير"}}),
    ):
        ev = events.Event(kind, ident.public_key, 1, None, "2017-03-12T10:00:00Z", body)
        out.append(events.sign_event(ev, ident).entry)
    return out


def _checkpoint_seed() -> checkpoint.SignedCheckpoint:
    cp = checkpoint.Checkpoint("athar.vault/" + "ab" * 16, 7, b"\x01" * 32, "2017-03-12T10:00:00Z")
    return checkpoint.sign_checkpoint(cp, _identity())


def _image_seeds() -> list[bytes]:
    out = []
    picture = Image.new("RGB", (40, 24), (200, 30, 30))
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"):
        buf = io.BytesIO()
        picture.save(buf, fmt)
        out.append(buf.getvalue())
    return out


_CSV_SEEDS = [
    "name_ar.full,status,status.date\nرامي الحلبي,killed,2016-11-20\nنورا,detained,٢٠١٦\n",
    "name_en.full,age,sex,place.name\nSamir,34,male,Aleppo\n,,,\n",
    '"name_ar.full","notes"\n"سمير ""أبو خالد""","=1+2"\n',
    'title.ar,date,killed.min,killed.max,coordinates\nقصف السوق,2017-03,3,12,"36.2,37.1"\n',
]

# -- the targets -------------------------------------------------------------------------


def _csv(data: bytes) -> None:
    _, records, _ = _vault_and_records()
    path = _workdir() / "input.csv"
    path.write_bytes(data)
    for type_name in ("person", "incident"):
        csvimport.import_csv(records, path, type_name, dry_run=True)


_FIELDS = sorted(
    {(t.name, f.path): f for t in schema.TYPES.values() for f in t.fields.values()}.items()
)
_VOCAB = vocab.Vocabularies()


def _value(pair: tuple[tuple[tuple[str, str], schema.Field], Any]) -> None:
    (_, spec), raw = pair
    parsed = parse_value(spec, raw, _VOCAB)
    if spec.kind in (schema.REF,):
        return
    # What formats writes must read back to the same value (the CSV round trip).
    again = parse_value(spec, value_text(spec, parsed), _VOCAB)
    if again != parsed:
        raise AssertionError(f"{spec.path}: {raw!r} -> {parsed!r} -> {again!r}")


_value_raw = st.one_of(
    json_values,
    st.text(alphabet="0123456789٠١٢٣٤٥٦٧٨٩-/~.,: TZe", max_size=24),
    st.sampled_from(["2017-03-12", "~2017", "2016/2017", "36.2,37.1,50", "3-12", "نعم", "killed"]),
)


def _checkpoint_note(pair: tuple[bytes, bytes]) -> None:
    note, vkey = pair
    checkpoint.open_note(note.decode("utf-8", "replace"), vkey.decode("utf-8", "replace"))


def _checkpoint_file(doc: Any) -> None:
    path = _workdir() / "cp.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    checkpoint.load_checkpoint_file(path)


def _proof(doc: Any) -> None:
    path = _workdir() / "proof.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    proofs.check_proof(proofs.load_proof(path))


def _event(entry: bytes) -> None:
    events.parse_entry(entry)
    events.parse_essentials(entry)


def _image(data: bytes) -> None:
    imagedecode.open_image(data, max_pixels=1 << 20, decode_side=256)


def _targets() -> list[Target]:
    cp = _checkpoint_seed()
    _, _, proof = _vault_and_records()
    cp_doc = cp.to_json()
    return [
        Target(
            "csv-import",
            mutations([s.encode("utf-8") for s in _CSV_SEEDS] + [_CSV_SEEDS[3].encode("cp1256")]),
            _csv,
        ),
        Target(
            "record-values",
            st.tuples(st.sampled_from(_FIELDS), _value_raw),
            _value,
            (AtharError, Problem),
        ),
        Target(
            "checkpoint-note",
            st.tuples(mutations([cp.note.encode()]), mutations([cp.verifier_key.encode()], 80)),
            _checkpoint_note,
        ),
        Target(
            "checkpoint-file",
            json_mutations(cp_doc, ["type", "note", "verifier_key", "size", "root"]),
            _checkpoint_file,
        ),
        Target(
            "proof-file",
            json_mutations(
                proof,
                [
                    "type",
                    "entry",
                    "index",
                    "tree_size",
                    "path",
                    "checkpoint",
                    "checkpoint.note",
                    "checkpoint.verifier_key",
                    "item",
                ],
            ),
            _proof,
        ),
        Target("event-entry", mutations(_event_seeds()), _event),
        Target("image-decode", mutations(_image_seeds(), 256), _image),
    ]


@cache
def targets() -> dict[str, Target]:
    return {t.name: t for t in _targets()}
