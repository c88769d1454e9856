"""Threshold disclosure (issue 10): a protected witness's identity opens only when k of the
n reviewers each open their own share; fewer, foreign, repeated or altered shares are
refused with a clear error."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest
from nacl.public import PrivateKey

from athar.crypto import shares
from athar.crypto.identity import DeviceIdentity
from athar.errors import InputError, IntegrityError

WITNESS = json.dumps(
    {"name": "أم محمد الحلبية", "phone": "+963-933-000-111", "place": "حي الصاخور"},
    ensure_ascii=False,
).encode()
CONTEXT = b"per-7f3a2c"


@pytest.fixture(scope="module")
def reviewers() -> list[PrivateKey]:
    return [PrivateKey.generate() for _ in range(5)]


@pytest.fixture(scope="module")
def sealed(reviewers: list[PrivateKey]) -> shares.SealedDisclosure:
    return shares.seal_disclosure(WITNESS, [bytes(r.public_key) for r in reviewers], 3, CONTEXT)


def _opened(sealed, reviewers, which) -> list[shares.ReviewerShare]:
    return [shares.open_reviewer_share(sealed, bytes(reviewers[i])) for i in which]


def test_any_three_of_five_reviewers_open_it(sealed, reviewers) -> None:
    for which in itertools.combinations(range(5), 3):
        assert shares.open_disclosure(sealed, _opened(sealed, reviewers, which)) == WITNESS
    assert shares.open_disclosure(sealed, _opened(sealed, reviewers, range(5))) == WITNESS
    assert WITNESS not in json.dumps(sealed.to_json()).encode()
    assert "أم محمد".encode() not in sealed.ciphertext


def test_two_reviewers_are_not_enough(sealed, reviewers) -> None:
    with pytest.raises(InputError, match="3 shares are needed and only 2 were given"):
        shares.open_disclosure(sealed, _opened(sealed, reviewers, (0, 4)))
    with pytest.raises(InputError, match="no shares given"):
        shares.open_disclosure(sealed, [])


def test_a_share_given_twice_is_refused(sealed, reviewers) -> None:
    given = _opened(sealed, reviewers, (0, 1, 1))
    with pytest.raises(InputError, match="given twice"):
        shares.open_disclosure(sealed, given)


def test_an_outsider_cannot_open_a_share(sealed) -> None:
    with pytest.raises(InputError, match="not one of the disclosure's reviewers"):
        shares.open_reviewer_share(sealed, bytes(PrivateKey.generate()))


def test_shares_of_another_disclosure_are_refused(sealed, reviewers) -> None:
    other = shares.seal_disclosure(WITNESS, [bytes(r.public_key) for r in reviewers], 3)
    mixed = _opened(sealed, reviewers, (0, 1)) + _opened(other, reviewers, (2,))
    with pytest.raises(InputError, match="another disclosure"):
        shares.open_disclosure(sealed, mixed)
    # A sealed share moved into the other disclosure's record does not pass either.
    swapped = replace(other, sealed_shares=(sealed.sealed_shares[0], *other.sealed_shares[1:]))
    with pytest.raises(IntegrityError, match="another disclosure"):
        shares.open_reviewer_share(swapped, bytes(reviewers[0]))


def test_an_altered_share_or_ciphertext_is_detected(sealed, reviewers) -> None:
    given = _opened(sealed, reviewers, (0, 1, 2))
    bad = replace(given[2], data=bytes(b ^ 0x80 for b in given[2].data))
    with pytest.raises(IntegrityError, match="at least one of them is wrong"):
        shares.open_disclosure(sealed, [*given[:2], bad])
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 1
    with pytest.raises(IntegrityError):
        shares.open_disclosure(replace(sealed, ciphertext=bytes(flipped)), given)
    with pytest.raises(IntegrityError):  # the record it was sealed for is bound to it
        shares.open_disclosure(replace(sealed, context=b"per-000000"), given)
    broken = bytearray(sealed.sealed_shares[1])
    broken[5] ^= 1
    damaged = replace(
        sealed, sealed_shares=(sealed.sealed_shares[0], bytes(broken), *sealed.sealed_shares[2:])
    )
    with pytest.raises(IntegrityError, match="failed authentication"):
        shares.open_reviewer_share(damaged, bytes(reviewers[1]))


def test_json_round_trip_and_malformed_records(sealed, reviewers) -> None:
    again = shares.SealedDisclosure.from_json(json.loads(json.dumps(sealed.to_json())))
    assert shares.open_disclosure(again, _opened(again, reviewers, (1, 2, 3))) == WITNESS
    doc = sealed.to_json()
    for broken in (
        {},
        [],
        {**doc, "type": "other"},
        {**doc, "k": 9},
        {**doc, "ciphertext": "!!"},
        {**doc, "reviewers": doc["reviewers"][:4]},
        {**doc, "id": "xyz"},
    ):
        with pytest.raises(InputError, match="not an Athar sealed disclosure"):
            shares.SealedDisclosure.from_json(broken)


def test_bad_reviewer_lists_are_refused(reviewers) -> None:
    keys = [bytes(r.public_key) for r in reviewers]
    with pytest.raises(InputError, match="need 2 <= k <= n"):
        shares.seal_disclosure(WITNESS, keys[:2], 3)
    with pytest.raises(InputError, match="distinct 32-byte"):
        shares.seal_disclosure(WITNESS, [keys[0], keys[0], keys[1]], 2)
    with pytest.raises(InputError, match="distinct 32-byte"):
        shares.seal_disclosure(WITNESS, [keys[0], b"short"], 2)


def test_device_identities_can_be_reviewers() -> None:
    """Reviewers are Athar devices: their vault's X25519 key is the reviewer key."""
    devices = [DeviceIdentity.generate() for _ in range(3)]
    sealed = shares.seal_disclosure(WITNESS, [d.encryption_public_key for d in devices], 2)
    opened = [shares.open_reviewer_share(sealed, d.encryption_secret) for d in devices[1:]]
    assert shares.open_disclosure(sealed, opened) == WITNESS
