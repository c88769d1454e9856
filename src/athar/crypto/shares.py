"""k-of-n secret sharing of 32-byte keys, as printable text, and threshold sealing.

The field arithmetic is PyCryptodome's Shamir scheme over GF(2^128), which shares 16-byte
secrets; a 32-byte key is shared as its two halves, each with its own random polynomial
and the same share indices, so fewer than k shares say nothing about either half.
Nothing here checks that the combined secret is right: with fewer than k or a wrong share
Shamir silently returns other bytes. Every caller therefore uses the combined key to open
an AEAD seal, whose tag is the real check.

A share as text (one line, fits a QR code and can be typed from paper):

    athar-share/1 <purpose> <group hex> <k>-of-<n> #<index> <data hex> <check hex>

where *group* names what the share belongs to (a vault and one split of its key), and
*check* is the first 4 bytes of SHA-256 over the rest of the line, which catches a typo
or a torn label before anything is combined.

Threshold disclosure: a secret (a protected witness's identity) sealed under a random
data key, the key split k-of-n and each share sealed to one reviewer's X25519 public key
with libsodium's sealed box; it opens only when k reviewers each open their own share.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from Crypto.Protocol.SecretSharing import Shamir
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from athar.crypto import aead
from athar.errors import InputError, IntegrityError

SECRET_BYTES = 32
MAX_SHARES = 255
PREFIX = "athar-share/1"
DISCLOSURE_TYPE = "athar.disclosure/1"
_LINE = re.compile(
    r"athar-share/1 (?P<purpose>[a-z]+) (?P<group>[0-9a-f]{2,64}) (?P<k>\d{1,3})-of-(?P<n>\d{1,3})"
    r" #(?P<index>\d{1,3}) (?P<data>[0-9a-f]{64}) (?P<check>[0-9a-f]{8})"
)
_HALF = SECRET_BYTES // 2


def check_threshold(k: int, n: int) -> None:
    if not 2 <= k <= n <= MAX_SHARES:
        raise InputError(
            "need 2 <= k <= n <= {max} (k shares of n open the secret); got k={k}, n={n}",
            max=MAX_SHARES,
            k=k,
            n=n,
        )


def split_secret(secret: bytes, k: int, n: int) -> list[tuple[int, bytes]]:
    """Split a 32-byte secret into n (index, 32-byte share) pairs, any k of which rejoin it."""
    check_threshold(k, n)
    if len(secret) != SECRET_BYTES:
        raise ValueError("only 32-byte secrets are shared")
    low = Shamir.split(k, n, secret[:_HALF])
    high = Shamir.split(k, n, secret[_HALF:])
    return [(i, a + b) for (i, a), (j, b) in zip(low, high, strict=True) if i == j]


def combine_secret(shares: Sequence[tuple[int, bytes]]) -> bytes:
    """Rejoin distinct (index, share) pairs; garbage out if they are too few or wrong."""
    low = [(i, s[:_HALF]) for i, s in shares]
    high = [(i, s[_HALF:]) for i, s in shares]
    return bytes(Shamir.combine(low)) + bytes(Shamir.combine(high))


@dataclass(frozen=True)
class Share:
    purpose: str  # what the secret unlocks, e.g. "recovery"
    group: bytes  # which secret: every share of one split carries the same group
    k: int
    n: int
    index: int
    data: bytes

    def _body(self) -> str:
        return (
            f"{PREFIX} {self.purpose} {self.group.hex()} {self.k}-of-{self.n}"
            f" #{self.index} {self.data.hex()}"
        )

    def to_text(self) -> str:
        body = self._body()
        return f"{body} {_check(body)}"

    @classmethod
    def parse(cls, text: str, where: str = "share") -> Share:
        """Read a share line, tolerating surrounding text, case and runs of whitespace."""
        flat = " ".join(text.lower().split())
        m = _LINE.search(flat)
        if m is None:
            raise InputError("{where} is not an Athar share (no athar-share/1 line)", where=where)
        share = cls(
            m["purpose"],
            bytes.fromhex(m["group"]),
            int(m["k"]),
            int(m["n"]),
            int(m["index"]),
            bytes.fromhex(m["data"]),
        )
        if _check(share._body()) != m["check"]:
            raise InputError(
                "{where} is damaged: its checksum does not match (a mistyped or torn share)",
                where=where,
            )
        if not 2 <= share.k <= share.n <= MAX_SHARES or not 1 <= share.index <= share.n:
            raise InputError("{where} has impossible numbers (k, n or index)", where=where)
        return share


def _check(body: str) -> str:
    return hashlib.sha256(body.encode("ascii")).hexdigest()[:8]


def make_shares(purpose: str, group: bytes, secret: bytes, k: int, n: int) -> list[Share]:
    return [Share(purpose, group, k, n, i, d) for i, d in split_secret(secret, k, n)]


def rejoin(shares: Sequence[Share], purpose: str) -> tuple[bytes, bytes]:
    """Combine shares of one split; return (group, secret). Refuses mixed, repeated or too
    few shares with a clear error; a wrong share that passed its checksum can only be
    caught by the caller's seal."""
    if not shares:
        raise InputError("no shares given")
    first = shares[0]
    for s in shares:
        if s.purpose != purpose:
            raise InputError(
                "a {found} share was given where {wanted} shares are needed",
                found=s.purpose,
                wanted=purpose,
            )
        if (s.group, s.k, s.n) != (first.group, first.k, first.n):
            raise InputError(
                "the shares come from different splits (another vault or an older split); "
                "give shares of one split only"
            )
    seen: dict[int, bytes] = {}
    for s in shares:
        if s.index in seen:
            if seen[s.index] == s.data:
                raise InputError("share #{index} was given twice", index=s.index)
            raise InputError("two different shares both claim to be #{index}", index=s.index)
        seen[s.index] = s.data
    if len(seen) < first.k:
        raise InputError(
            "{k} shares are needed and only {got} were given", k=first.k, got=len(seen)
        )
    chosen = sorted(seen.items())[: first.k]
    return first.group, combine_secret(chosen)


# -- threshold disclosure --------------------------------------------------------------


def _disclosure_ad(ident: bytes, k: int, n: int, context: bytes) -> bytes:
    return b"athar-disclosure/1\n" + ident + bytes([k, n]) + context


@dataclass(frozen=True)
class SealedDisclosure:
    """A secret that opens only with k of n reviewers' shares; safe to store or send."""

    ident: bytes
    k: int
    n: int
    context: bytes  # what the secret is about (e.g. a record id), bound as associated data
    ciphertext: bytes
    reviewers: tuple[bytes, ...]  # X25519 public keys, in share order (#1 first)
    sealed_shares: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        b64 = base64.b64encode
        return {
            "type": DISCLOSURE_TYPE,
            "id": self.ident.hex(),
            "k": self.k,
            "n": self.n,
            "context": b64(self.context).decode(),
            "ciphertext": b64(self.ciphertext).decode(),
            "reviewers": [
                {"key": b64(p).decode(), "share": b64(s).decode()}
                for p, s in zip(self.reviewers, self.sealed_shares, strict=True)
            ],
        }

    @classmethod
    def from_json(cls, doc: Any) -> SealedDisclosure:
        try:
            if not isinstance(doc, dict) or doc.get("type") != DISCLOSURE_TYPE:
                raise ValueError
            reviewers = doc["reviewers"]
            sealed = cls(
                bytes.fromhex(doc["id"]),
                int(doc["k"]),
                int(doc["n"]),
                base64.b64decode(doc["context"], validate=True),
                base64.b64decode(doc["ciphertext"], validate=True),
                tuple(base64.b64decode(r["key"], validate=True) for r in reviewers),
                tuple(base64.b64decode(r["share"], validate=True) for r in reviewers),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InputError("not an Athar sealed disclosure") from None
        if len(sealed.reviewers) != sealed.n or not 2 <= sealed.k <= sealed.n <= MAX_SHARES:
            raise InputError("not an Athar sealed disclosure")
        return sealed


def seal_disclosure(
    secret: bytes, reviewers: Sequence[bytes], k: int, context: bytes = b""
) -> SealedDisclosure:
    """Seal *secret* so that any k of the reviewers (X25519 public keys) can open it."""
    n = len(reviewers)
    check_threshold(k, n)
    if len(set(reviewers)) != n or any(len(r) != 32 for r in reviewers):
        raise InputError("each reviewer needs a distinct 32-byte X25519 public key")
    ident = os.urandom(16)
    data_key = aead.random_key()
    ciphertext = aead.seal(data_key, secret, _disclosure_ad(ident, k, n, context), cache=False)
    sealed_shares = tuple(
        SealedBox(PublicKey(pub)).encrypt(ident + bytes([index]) + share)
        for pub, (index, share) in zip(reviewers, split_secret(data_key, k, n), strict=True)
    )
    return SealedDisclosure(ident, k, n, context, ciphertext, tuple(reviewers), sealed_shares)


@dataclass(frozen=True)
class ReviewerShare:
    """One reviewer's opened share: handed (over a safe channel) to whoever convenes."""

    ident: bytes
    index: int
    data: bytes


def open_reviewer_share(sealed: SealedDisclosure, secret_key: bytes) -> ReviewerShare:
    """A reviewer opens the share sealed to them with their X25519 secret key."""
    mine = bytes(PrivateKey(secret_key).public_key)
    if mine not in sealed.reviewers:
        raise InputError("this key is not one of the disclosure's reviewers")
    position = sealed.reviewers.index(mine)
    try:
        plain = SealedBox(PrivateKey(secret_key)).decrypt(sealed.sealed_shares[position])
    except CryptoError:
        raise IntegrityError("a reviewer's share failed authentication") from None
    if len(plain) != 16 + 1 + SECRET_BYTES or plain[:16] != sealed.ident:
        raise IntegrityError("a reviewer's share belongs to another disclosure")
    return ReviewerShare(plain[:16], plain[16], plain[17:])


def open_disclosure(sealed: SealedDisclosure, shares: Sequence[ReviewerShare]) -> bytes:
    """Open the secret with at least k reviewers' shares."""
    if any(s.ident != sealed.ident for s in shares):
        raise InputError("a share belongs to another disclosure")
    as_shares = [Share("disclosure", s.ident, sealed.k, sealed.n, s.index, s.data) for s in shares]
    if not as_shares:
        raise InputError("no shares given")
    _, data_key = rejoin(as_shares, "disclosure")
    ad = _disclosure_ad(sealed.ident, sealed.k, sealed.n, sealed.context)
    try:
        return aead.open_sealed(data_key, sealed.ciphertext, ad, what="disclosure", cache=False)
    except IntegrityError:
        raise IntegrityError(
            "the shares do not open this disclosure: at least one of them is wrong"
        ) from None
