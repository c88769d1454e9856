"""Key recovery: the vault's master key sealed a second time, under a random recovery key
that exists only as k-of-n shares held by trusted people.

    key file field "recovery" = ChaCha20-Poly1305(HKDF(R, "recovery"), master,
                                ad = "athar-vault-key/1 recovery\\n" ‖ split id)

R (32 random bytes) is never written anywhere: it is split at once and forgotten. The split
id (8 random bytes) is printed on every share and bound into the seal, not stored in the
key file, so a seized key file does not name the paper shares that open it. A new split
replaces the slot, which retires every share of the old one. Rejoining k shares opens the
master key and seals it under a new passphrase; the shares stay valid until the next split.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import segno

from athar.crypto import aead, shares
from athar.crypto.kdf import subkey
from athar.errors import InputError, IntegrityError
from athar.vault import keyfile
from athar.vault.fsutil import atomic_write, private_mkdir
from athar.vault.keyfile import UnlockedKeys

FIELD = "recovery"
PURPOSE = "recovery"
SPLIT_ID_BYTES = 8
VAULT_ID_BYTES = keyfile.VAULT_ID_BYTES


def _ad(split_id: bytes) -> bytes:
    return b"athar-vault-key/1 recovery\n" + split_id


@dataclass(frozen=True)
class RecoveryShare:
    vault_id: bytes
    split_id: bytes
    share: shares.Share

    @property
    def text(self) -> str:
        return self.share.to_text()


def split(
    key_path: Path,
    keys: UnlockedKeys,
    k: int,
    n: int,
    before_commit: Callable[[list[RecoveryShare]], object] | None = None,
) -> list[RecoveryShare]:
    """Make a fresh recovery key, seal the master key under it, and split it k-of-n.

    This also rotates the recovery key: the previous split's shares stop opening the
    vault. *before_commit* (printing the new shares) runs before the key file changes, so
    a failure there leaves the old shares working rather than no shares at all."""
    shares.check_threshold(k, n)
    secret = aead.random_key()
    split_id = os.urandom(SPLIT_ID_BYTES)
    document = keyfile.load(key_path)
    document[FIELD] = aead.seal(
        subkey(secret, "recovery"), keys.master, _ad(split_id), cache=False
    ).hex()
    group = keys.vault_id + split_id
    made = [
        RecoveryShare(keys.vault_id, split_id, s)
        for s in shares.make_shares(PURPOSE, group, secret, k, n)
    ]
    if before_commit is not None:
        before_commit(made)
    keyfile.save(key_path, document)
    return made


def parse(texts: Sequence[tuple[str, str]]) -> list[shares.Share]:
    """(where, text) pairs → shares, each checked on its own (checksum, numbers)."""
    out = []
    for where, text in texts:
        share = shares.Share.parse(text, where)
        if share.purpose != PURPOSE or len(share.group) != VAULT_ID_BYTES + SPLIT_ID_BYTES:
            raise InputError("{where} is not a vault recovery share", where=where)
        out.append(share)
    return out


def unlock(key_path: Path, given: Sequence[shares.Share]) -> UnlockedKeys:
    """Open the vault's keys from k shares (no passphrase)."""
    group, secret = shares.rejoin(given, PURPOSE)
    vault_id, split_id = group[:VAULT_ID_BYTES], group[VAULT_ID_BYTES:]
    document = keyfile.load(key_path)
    sealed = document.get(FIELD)
    if not isinstance(sealed, str):
        raise InputError("this vault has no recovery shares (none were ever made)")
    try:
        master = aead.open_sealed(
            subkey(secret, "recovery"),
            bytes.fromhex(sealed),
            _ad(split_id),
            what="recovery slot",
            cache=False,
        )
    except (IntegrityError, ValueError):
        raise InputError(
            "these shares do not open this vault: they belong to another vault or an older "
            "split, or one of them is wrong (nothing was changed)"
        ) from None
    keys = keyfile.keys_from_master(document, master)
    if keys.vault_id != vault_id:
        raise InputError("these shares belong to another vault (nothing was changed)")
    return keys


def recover(key_path: Path, given: Sequence[shares.Share], new_passphrase: str) -> UnlockedKeys:
    """Rejoin the shares and seal the master key under *new_passphrase*."""
    if not new_passphrase:
        raise InputError("the passphrase must not be empty")
    keys = unlock(key_path, given)
    keyfile.rewrap(key_path, keys, new_passphrase)
    return keys


PAPER = """\
Athar vault recovery share {index} of {n} — any {k} shares open the vault
حصة استعادة خزنة أثر رقم {index} من {n} — أي {k} حصص تفتح الخزنة

Keep this paper hidden and apart from the other shares. Give it back only to rejoin the
vault's key (athar recovery join). A new split makes this share useless.
احفظ هذه الورقة مخفيةً وبعيدةً عن الحصص الأخرى، ولا تسلّمها إلا لإعادة جمع مفتاح الخزنة
(athar recovery join). أي تقسيم جديد يُبطل هذه الحصة.

{text}
"""


def write_paper(made: Sequence[RecoveryShare], out: Path) -> list[Path]:
    """Write each share as text and as a QR code (PNG and SVG) into a private folder."""
    if out.exists() and any(out.iterdir()):
        raise InputError("{path} exists and is not empty", path=str(out))
    private_mkdir(out)
    written = []
    for r in made:
        s = r.share
        stem = out / f"athar-share-{s.index}-of-{s.n}"
        paper = PAPER.format(index=s.index, n=s.n, k=s.k, text=r.text)
        atomic_write(stem.with_suffix(".txt"), paper.encode("utf-8"))
        qr = segno.make(r.text, error="m", micro=False)
        for suffix, kind in ((".png", "png"), (".svg", "svg")):
            path = stem.with_suffix(suffix)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "wb") as fh:
                qr.save(fh, kind=kind, scale=6, border=4)
            written.append(path)
        written.append(stem.with_suffix(".txt"))
    return sorted(written)


def has_recovery(key_path: Path) -> bool:
    return isinstance(keyfile.load(key_path).get(FIELD), str)
