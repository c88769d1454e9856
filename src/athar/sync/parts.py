"""Splitting an encrypted bundle into erasure-coded parts, and putting it back together.

The bundle's age ciphertext is cut into D data blocks of equal size (the last padded
with zeros). Blocks are grouped (at most 256 parts per group, zfec's limit); for each
group of k data blocks, zfec (Reed-Solomon, systematic) adds m = ceil(k × redundancy)
parity blocks, so any k of the group's n = k + m parts rebuild it. Each part file is
its block followed by a trailer (docs/bundle-format.md)::

    "ATHARPT1" ‖ bundle id (32) ‖ u64 length ‖ u32 block size ‖ u32 groups ‖ u32 group
    ‖ u8 k-1 ‖ u8 n-1 ‖ u8 index ‖ group digests (groups × 32) ‖ part hashes (n × 32)
    ‖ u32 trailer length ‖ "ATHAREND"

    group digest = SHA-256(k ‖ n ‖ part hashes of the group)
    bundle id    = SHA-256("athar-parts/1" ‖ length ‖ block size ‖ groups ‖ group digests)

So every part is checked alone against the bundle id it claims: a flipped bit, a cut
(the trailer is at the end) or a part from another bundle is named, never used. The
parts hold only ciphertext: a courier learns the size and nothing else.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from athar.errors import InputError, IntegrityError
from athar.vault.fsutil import open_private

MAGIC = b"ATHARPT1"
END = b"ATHAREND"
_FIXED = struct.Struct(">32sQIIIBBB")
_TAIL = struct.Struct(">I8s")
MAX_PARTS = 256
STRIPE = 64 << 10
SUFFIX = ".athar-part"


@dataclass(frozen=True)
class Part:
    path: Path
    bundle: bytes
    length: int
    block: int
    groups: int
    group: int
    k: int
    n: int
    index: int
    digests: tuple[bytes, ...]
    table: tuple[bytes, ...]


def plan_groups(blocks: int, redundancy: float) -> list[tuple[int, int]]:
    """(k, n) per group: as equal as possible, each n within zfec's 256."""
    per = max(1, min(blocks, int(MAX_PARTS / (1 + redundancy))))
    while per > 1 and per + _parity(per, redundancy) > MAX_PARTS:
        per -= 1
    count = -(-blocks // per)
    sizes = [blocks // count + (1 if g < blocks % count else 0) for g in range(count)]
    return [(k, k + _parity(k, redundancy)) for k in sizes]


def _parity(k: int, redundancy: float) -> int:
    return int(-(-(k * redundancy * 1_000_000) // 1_000_000)) if redundancy > 0 else 0


def _read_block(fd: int, offset: int, size: int, length: int) -> bytes:
    data = os.pread(fd, max(0, min(size, length - offset)), offset) if offset < length else b""
    return data + bytes(size - len(data))


def split(
    cipher: Path, out_dir: Path, part_size: int, redundancy: float, stem: str = "athar"
) -> list[Path]:
    """Cut *cipher* into parts in *out_dir*; return their paths in order."""
    import zfec  # here, not at the top: a whole bundle's export and import never need it

    if part_size < 1024:
        raise InputError("--part-size must be at least 1 KiB")
    if not 0 <= redundancy <= 4:
        raise InputError("--redundancy must be between 0% and 400%")
    length = cipher.stat().st_size
    count = max(1, -(-length // part_size))
    block = max(1, -(-length // count))
    groups = plan_groups(count, redundancy)
    tmp_paths: list[Path] = []
    tables: list[list[bytes]] = []
    fd = os.open(cipher, os.O_RDONLY)
    try:
        first = 0
        for k, n in groups:
            paths = [out_dir / f".{stem}-{os.urandom(6).hex()}.tmp" for _ in range(n)]
            tmp_paths.extend(paths)
            outs = [open(open_private(p), "wb") for p in paths]  # noqa: SIM115 - closed below
            hashes = [hashlib.sha256() for _ in range(n)]
            encoder = zfec.Encoder(k, n) if n > k else None
            try:
                for at in range(0, block, STRIPE):
                    size = min(STRIPE, block - at)
                    pieces = tuple(
                        _read_block(fd, (first + j) * block + at, size, length) for j in range(k)
                    )
                    parity = encoder.encode(pieces, tuple(range(k, n))) if encoder else []
                    for i, piece in enumerate((*pieces, *parity)):
                        outs[i].write(piece)
                        hashes[i].update(piece)
            finally:
                for out in outs:
                    out.close()
            tables.append([h.digest() for h in hashes])
            first += k
        digests = [
            hashlib.sha256(bytes([k - 1, n - 1]) + b"".join(t)).digest()
            for (k, n), t in zip(groups, tables, strict=True)
        ]
        head = struct.pack(">QII", length, block, len(groups))
        bundle = hashlib.sha256(b"athar-parts/1" + head + b"".join(digests)).digest()
        finals: list[Path] = []
        number = 0
        at_path = iter(tmp_paths)
        for g, ((k, n), table) in enumerate(zip(groups, tables, strict=True)):
            for i in range(n):
                number += 1
                trailer = (
                    MAGIC
                    + _FIXED.pack(bundle, length, block, len(groups), g, k - 1, n - 1, i)
                    + b"".join(digests)
                    + b"".join(table)
                )
                tmp = next(at_path)
                with open(tmp, "ab") as fh:
                    fh.write(trailer + _TAIL.pack(len(trailer), END))
                    fh.flush()
                    os.fsync(fh.fileno())
                final = out_dir / f"{stem}-{bundle.hex()[:8]}-{number:04d}{SUFFIX}"
                os.replace(tmp, final)
                finals.append(final)
        return finals
    except BaseException:
        for p in tmp_paths:
            p.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def read_part(path: Path) -> Part:
    """Parse and check one part file; IntegrityError names what is wrong with it."""
    bad = IntegrityError(
        "{path} is not a whole Athar bundle part (truncated or damaged)", path=path.name
    )
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < _TAIL.size:
                raise bad
            fh.seek(size - _TAIL.size)
            tlen, end = _TAIL.unpack(fh.read(_TAIL.size))
            if end != END or tlen > size - _TAIL.size or tlen < len(MAGIC) + _FIXED.size:
                raise bad
            fh.seek(size - _TAIL.size - tlen)
            trailer = fh.read(tlen)
            if trailer[: len(MAGIC)] != MAGIC:
                raise bad
            bundle, length, block, groups, group, k1, n1, index = _FIXED.unpack_from(
                trailer, len(MAGIC)
            )
            k, n = k1 + 1, n1 + 1
            rest = trailer[len(MAGIC) + _FIXED.size :]
            if len(rest) != 32 * (groups + n) or group >= groups or index >= n or k > n:
                raise bad
            digests = tuple(rest[32 * i : 32 * i + 32] for i in range(groups))
            table = tuple(rest[32 * (groups + i) : 32 * (groups + i) + 32] for i in range(n))
            head = struct.pack(">QII", length, block, groups)
            if (
                hashlib.sha256(b"athar-parts/1" + head + b"".join(digests)).digest() != bundle
                or hashlib.sha256(bytes([k1, n1]) + b"".join(table)).digest() != digests[group]
            ):
                raise IntegrityError(
                    "{path} is damaged: its description does not match its bundle id",
                    path=path.name,
                )
            if size - _TAIL.size - tlen != block:
                raise bad
            fh.seek(0)
            digest = hashlib.sha256()
            left = block
            while left:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    raise bad
                digest.update(chunk)
                left -= len(chunk)
            if digest.digest() != table[index]:
                raise IntegrityError(
                    "{path} is damaged: its content does not match its recorded hash",
                    path=path.name,
                )
    except OSError as exc:
        raise InputError(
            "cannot read {path}: {reason}", path=str(path), reason=exc.strerror or str(exc)
        ) from None
    return Part(path, bundle, length, block, groups, group, k, n, index, digests, table)


@dataclass
class PartSet:
    """The parts of one bundle found so far (each distinct part once)."""

    bundle: bytes
    parts: dict[tuple[int, int], Part] = field(default_factory=dict)

    @property
    def any(self) -> Part:
        return next(iter(self.parts.values()))

    def shape(self) -> list[tuple[int, int]] | None:
        """(k, n) of every group, known once a part of each group is here."""
        seen: dict[int, tuple[int, int]] = {}
        for (g, _), p in self.parts.items():
            seen[g] = (p.k, p.n)
        groups = self.any.groups
        return [seen[g] for g in range(groups)] if len(seen) == groups else None

    def missing(self) -> tuple[int, list[str]]:
        """(how many more parts are needed, which are absent) — numbers as in file names."""
        groups = self.any.groups
        seen: dict[int, tuple[int, int]] = {}
        for (g, _), p in self.parts.items():
            seen[g] = (p.k, p.n)
        need = 0
        absent: list[str] = []
        number = 1
        for g in range(groups):
            if g not in seen:
                absent.append(f"group {g + 1} (all of it)")
                need += 1
                continue
            k, n = seen[g]
            have = [i for i in range(n) if (g, i) in self.parts]
            need += max(0, k - len(have))
            if len(have) < k:
                absent.extend(str(number + i) for i in range(n) if (g, i) not in self.parts)
            number += n
        return need, absent

    def complete(self) -> bool:
        return self.shape() is not None and self.missing()[0] == 0

    def assemble(self, out: Path) -> None:
        """Rebuild the ciphertext into *out* from any k parts of each group."""
        import zfec  # as in split()

        shape = self.shape()
        assert shape is not None
        first = self.any
        if first.length > sum(k for k, _ in shape) * first.block:  # forged: no huge output
            raise IntegrityError(
                "{path} is not a whole Athar bundle part (truncated or damaged)",
                path=first.path.name,
            )
        with open(open_private(out), "wb") as sink:
            for g, (k, n) in enumerate(shape):
                chosen = sorted(i for i in range(n) if (g, i) in self.parts)[:k]
                fds = [os.open(self.parts[(g, i)].path, os.O_RDONLY) for i in chosen]
                try:
                    decoder = zfec.Decoder(k, n) if chosen != list(range(k)) else None
                    if decoder is None:
                        for fd in fds:
                            _copy(fd, sink, first.block)
                        continue
                    # Decode stripe by stripe; primary block j goes to a temp file (still
                    # ciphertext) so that memory stays at k stripes.
                    tmp_blocks = [out.with_name(f".{out.name}.{j}") for j in range(k)]
                    outs = [open(open_private(p), "wb") for p in tmp_blocks]  # noqa: SIM115
                    try:
                        for at in range(0, first.block, STRIPE):
                            size = min(STRIPE, first.block - at)
                            pieces = tuple(os.pread(fd, size, at) for fd in fds)
                            for j, piece in enumerate(decoder.decode(pieces, tuple(chosen))):
                                outs[j].write(piece)
                    finally:
                        for o in outs:
                            o.close()
                    for p in tmp_blocks:
                        fd2 = os.open(p, os.O_RDONLY)
                        try:
                            _copy(fd2, sink, first.block)
                        finally:
                            os.close(fd2)
                            p.unlink()
                finally:
                    for fd in fds:
                        os.close(fd)
            sink.truncate(first.length)


def _copy(fd: int, sink: object, size: int) -> None:
    at = 0
    while at < size:
        chunk = os.pread(fd, min(1 << 20, size - at), at)
        if not chunk:
            raise IntegrityError("a bundle part shrank while it was being read")
        sink.write(chunk)  # type: ignore[attr-defined]
        at += len(chunk)


@dataclass
class Sorted:
    bundles: dict[bytes, PartSet]
    damaged: list[IntegrityError]
    others: list[Path]  # files that are not parts (whole bundles)


def sort_parts(paths: Iterable[Path]) -> Sorted:
    """Group part files by bundle; damaged ones reported, duplicates kept once."""
    out = Sorted({}, [], [])
    for path in sorted(set(paths)):
        if not path.name.endswith(SUFFIX):
            out.others.append(path)
            continue
        try:
            part = read_part(path)
        except IntegrityError as exc:
            out.damaged.append(exc)
            continue
        ps = out.bundles.setdefault(part.bundle, PartSet(part.bundle))
        ps.parts.setdefault((part.group, part.index), part)
    return out


def expand(inputs: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files.extend(sorted(x for x in p.iterdir() if x.is_file()))
        elif p.exists():
            files.append(p)
        else:
            raise InputError("no such file or directory: {path}", path=str(p))
    return files
