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
import base64
import contextlib
import hashlib
import io
import json
import shutil
import struct
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pyrage
from hypothesis import strategies as st
from PIL import Image

from athar.crypto.identity import DeviceIdentity
from athar.errors import AtharError
from athar.records import csvimport, schema, vocab
from athar.records.formats import value_text
from athar.records.service import Records
from athar.records.validate import parse_value
from athar.records.values import Problem
from athar.sync import bundle, exchange, parts, receipt
from athar.sync import service as sync
from athar.vault import checkpoint, events, merkle, proofs
from athar.vault.vault import Vault
from athar.verify import imagedecode, proofmode

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


@cache
def _sync_pair() -> tuple[Vault, Vault, dict[str, Any]]:
    """A sender and a receiver vault, enrolled to each other, and what travels between
    them: one real bundle (whole, as parts, and its tar before encryption), delivered
    once so that the receiver can write its receipts (full and short)."""
    root = _workdir() / "sync"
    sender = Vault.create(root / "ميدان", PASSPHRASE)
    receiver = Vault.create(root / "مكتب", PASSPHRASE)
    atexit.register(sender.close)
    atexit.register(receiver.close)
    for vault, other in ((sender, receiver), (receiver, sender)):
        card = sync.card(other)
        sync.enrol(vault, card["key"], card["age_recipient"], other.root.name, admin=False)
    note = _workdir() / "إفادة.txt"
    note.write_text("إفادة شاهد عن قصف السوق\n" * 20, encoding="utf-8")
    sender.add([note])
    with Records(sender) as records:
        records.create("person", {"name_ar.full": "خالد يوسف"})
    to = sync.card(receiver)["age_recipient"]
    whole = sync.export_bundle(sender, [to], root / "whole")
    cut = sync.export_bundle(sender, [to], root / "parts", part_size=1024, redundancy=0.5)
    tar = io.BytesIO()
    bundle._write_tar(sender, exchange.collect(sender, 0), tar, None)
    sync.import_bundles(receiver, whole.files)
    return (
        sender,
        receiver,
        {
            "bundle": whole.files[0].read_bytes(),
            "tar": tar.getvalue(),
            "parts": [p.read_bytes() for p in cut.files],
            "recipient": pyrage.x25519.Recipient.from_str(to),
            "receipt": sync.make_receipt(receiver).encode(),
            "short": sync.make_receipt(receiver, short=True).encode(),
        },
    )


def _forged_parts(length: int, block: int, k: int, extra: int, keep: list[int]) -> list[bytes]:
    """Parts of one group whose hashes and bundle id agree (nothing in a part is signed:
    anyone can compute them) while the numbers they carry are the attacker's choice."""
    n = min(parts.MAX_PARTS, k + extra)
    blocks = [bytes((i + j) % 256 for j in range(block)) for i in range(n)]
    table = b"".join(hashlib.sha256(b).digest() for b in blocks)
    digest = hashlib.sha256(bytes([k - 1, n - 1]) + table).digest()
    bid = hashlib.sha256(b"athar-parts/1" + struct.pack(">QII", length, block, 1) + digest).digest()
    out = []
    for i in sorted({x % n for x in keep}):
        fixed = parts._FIXED.pack(bid, length, block, 1, 0, k - 1, n - 1, i)
        trailer = parts.MAGIC + fixed + digest + table
        out.append(blocks[i] + trailer + parts._TAIL.pack(len(trailer), parts.END))
    return out


@cache
def _bundle_members() -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(_sync_pair()[2]["tar"])) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]


def _tar_with_manifest(manifest: Any) -> bytes:
    """The real bundle's tar with another manifest: anyone may encrypt to a device's
    public age key, so everything under the encryption is the attacker's choice."""
    if not isinstance(manifest, bytes):
        manifest = json.dumps(manifest, ensure_ascii=False).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in _bundle_members():
            data = manifest if name == bundle.MANIFEST else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _short_receipt(size: int, blob: bytes) -> bytes:
    return f"{receipt.SHORT_TAG} {size} {base64.b64encode(blob).decode()}".encode()


def _forged_receipt(size: int, root: bytes, sender: str) -> bytes:
    """A full receipt signed by a key of the attacker's (the key travels in the text)
    over numbers of its choice: past the signature, into the checks after it."""
    ident = _identity()
    name = receipt.PREFIX + "cd" * 16
    lines = checkpoint.Checkpoint(name, size, root, "2017-03-12T10:00:00Z").body().split("\n")
    body = "\n".join([*lines[:3], f"of {sender}", *lines[3:]])
    sig = checkpoint.key_id(name, ident.public_key) + ident.sign(body.encode())
    note = f"{body}\n— {name} {base64.b64encode(sig).decode()}\n"
    return (note + checkpoint.verifier_key(name, ident.public_key) + "\n").encode()


@cache
def _proofmode_files() -> dict[str, bytes]:
    """A ProofMode export as tests/test_provenance.py builds it: media, its proof, the
    detached signatures of both and the phone's public key."""
    from pysequoia import SignatureMode, Tsk, sign

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        key = Tsk.generate("ProofMode حلب <proofmode@example.org>")
        media = b"\xff\xd8\xff jpeg bytes " * 20
        digest = hashlib.sha256(media).hexdigest()
        proof = json.dumps(
            {"File Hash SHA256": digest, "File Path": "/storage/DCIM/حلب.jpg"}, ensure_ascii=False
        ).encode()
        return {
            "IMG_20161207_091455.jpg": media,
            "IMG_20161207_091455.jpg.asc": sign(key.signer(), media, mode=SignatureMode.DETACHED),
            f"{digest}.proof.json": proof,
            f"{digest}.proof.json.asc": sign(key.signer(), proof, mode=SignatureMode.DETACHED),
            "pubkey.asc": str(key.extract_certificate()).encode(),
        }


def _zip(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are one of the mutations
        with zipfile.ZipFile(buf, "w", compression) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    return buf.getvalue()


_ENTRY_CONTENTS = [b"[" * 100_000, b"null", b'{"File Hash SHA256": [1]}', b"", "حلب".encode()]


def _zip_changed(
    name: str, ops: list[tuple[int, int, bytes]], rename: str | None, content: int | None
) -> bytes:
    """The seed zip with one entry's content mutated or replaced (the zip's CRC then
    agrees), or one entry renamed: past the zip layer, into the proof and signature
    checks."""
    files = dict(_proofmode_files())
    files[name] = _mutate(files[name], ops) if content is None else _ENTRY_CONTENTS[content]
    if rename is not None:
        files[rename] = files.pop(name)
    return _zip(files)


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


def _unchanged_if_refused(vault: Vault, action: Callable[[], object]) -> None:
    """A refusal must leave the vault exactly as it was: no event, no staged file."""
    before = vault.ledger.size()
    try:
        action()
    except AtharError:
        tmp = vault.blobs.tmp_dir
        left = sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []
        if vault.ledger.size() != before or left:
            raise AssertionError(f"refused, yet the vault changed (staged: {left})") from None
        raise


def _parts(files: list[bytes]) -> None:
    _, receiver, _ = _sync_pair()
    inbox = Path(tempfile.mkdtemp(dir=_workdir()))
    try:
        for i, data in enumerate(files):
            (inbox / f"athar-fuzz-{i + 1:04d}{parts.SUFFIX}").write_bytes(data)
        _unchanged_if_refused(receiver, lambda: sync.import_bundles(receiver, [inbox]))
    finally:
        shutil.rmtree(inbox, True)


def _bundle(pick: tuple[str, bytes]) -> None:
    _, receiver, seeds = _sync_pair()
    how, data = pick
    if how == "tar":  # damage under the encryption: tar, manifest, events, blobs
        data = pyrage.encrypt(data, [seeds["recipient"]])
    path = _workdir() / "bundle.age"
    path.write_bytes(data)
    _unchanged_if_refused(receiver, lambda: sync.import_file(receiver, path))


def _receipt(data: bytes) -> None:
    sender, _, _ = _sync_pair()
    text = data.decode("utf-8", "replace")
    if not receipt.is_short(text):  # the file form is read from a file
        path = _workdir() / "receipt.txt"
        path.write_bytes(data)
        receipt.load(path)
    sync.ack(sender, text)


def _proofmode(data: bytes) -> None:
    proofmode.check(proofmode.read_zip(data))


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
        Target("event-entry", mutations([*_event_seeds(), b"[" * 100_000]), _event),
        Target("image-decode", mutations(_image_seeds(), 256), _image),
        Target("bundle-parts", _parts_strategy(), _parts),
        Target("bundle-file", _bundle_strategy(), _bundle),
        Target("receipt", _receipt_strategy(), _receipt),
        Target("proofmode-zip", _proofmode_strategy(), _proofmode),
    ]


def _parts_strategy() -> st.SearchStrategy[list[bytes]]:
    real = _sync_pair()[2]["parts"]
    one = st.one_of(
        st.sampled_from(real), st.builds(_mutate, st.sampled_from(real), _OPS), st.binary()
    )
    return st.one_of(
        st.lists(one, max_size=len(real) + 2),
        st.builds(
            _forged_parts,
            st.one_of(st.integers(0, 4096), st.integers(0, (1 << 64) - 1)),
            st.integers(0, 2048),
            st.integers(1, 8),
            st.integers(0, 8),
            st.lists(st.integers(0, 255), max_size=12),
        ),
    )


def _bundle_strategy() -> st.SearchStrategy[tuple[str, bytes]]:
    seeds = _sync_pair()[2]
    manifest = json.loads(dict(_bundle_members())[bundle.MANIFEST])
    fields = ["type", "origin", "since", "size", "checkpoint", "verifier_key", "events", "blobs"]
    return st.one_of(
        st.tuples(st.just("age"), mutations([seeds["bundle"]])),
        st.tuples(st.just("tar"), mutations([seeds["tar"]])),
        st.tuples(
            st.just("tar"),
            st.builds(
                _tar_with_manifest,
                st.one_of(
                    json_mutations(manifest, fields),
                    st.sampled_from([b"[" * 100_000, b'{"type":' * 50_000, b"\xd9"]),
                ),
            ),
        ),
    )


def _receipt_strategy() -> st.SearchStrategy[bytes]:
    sender, _, seeds = _sync_pair()
    size, blob = seeds["short"].split(b" ")[1:]
    leaves, origin = [e.leaf for e in sender.events()], sender.ledger.origin
    return st.one_of(
        mutations([seeds["receipt"], seeds["short"]], 512),
        st.builds(
            _short_receipt,
            st.one_of(st.just(int(size)), st.integers(-2, 1 << 70)),
            mutations([base64.b64decode(blob)], 100),
        ),
        st.builds(
            _forged_receipt,
            st.one_of(st.integers(0, 64), st.integers(0, 1 << 70)),
            st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40)),
            st.one_of(st.just(sender.ledger.origin), st.text(max_size=30)),
        ),
        st.integers(0, len(leaves)).map(  # the true root: accepted, a consistency proof
            lambda n: _forged_receipt(n, merkle.root_from_hashes(leaves[:n]), origin)
        ),
    )


def _proofmode_strategy() -> st.SearchStrategy[bytes]:
    files = _proofmode_files()
    names = sorted(files)
    return st.one_of(
        mutations([_zip(files), _zip(files, zipfile.ZIP_DEFLATED)], 256),
        st.builds(
            _zip_changed,
            st.sampled_from(names),
            _OPS,
            st.one_of(
                st.none(),
                st.sampled_from([*names, "../pubkey.asc", "/etc/pubkey.asc", "a/pubkey.asc"]),
                st.text(st.characters(codec="utf-8"), min_size=1, max_size=30),
            ),
            st.one_of(st.none(), st.integers(0, len(_ENTRY_CONTENTS) - 1)),
        ),
    )


@cache
def targets() -> dict[str, Target]:
    return {t.name: t for t in _targets()}
