"""The fast canonical JSON equals the RFC 8785 reference implementation byte for byte."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from athar.vault.canonical import _fast_path_ok, canonical_json

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["محمد", "عبد الله", "\u0000\u001f\u007f", '"\\/', "\u2028\u2029", "😀", "ﻻ", "e\u0301"]
)
scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | text
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=1500, deadline=None)
@given(documents)
def test_fast_path_is_byte_identical_to_rfc8785(doc) -> None:
    assert canonical_json(doc) == bytes(rfc8785.dumps(doc))


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=4),
        st.floats(allow_nan=False, allow_infinity=False),
        max_size=3,
    )
)
def test_floats_go_to_the_reference(doc) -> None:
    assert canonical_json(doc) == bytes(rfc8785.dumps(doc))


def test_key_order_beyond_the_bmp_uses_the_reference() -> None:
    doc = {"\U0001f600": 1, "\uffff": 2}  # UTF-16 order differs from code point order here
    assert not _fast_path_ok(doc)
    assert canonical_json(doc) == bytes(rfc8785.dumps(doc))
    assert canonical_json(doc).index("😀".encode()) < canonical_json(doc).index("\uffff".encode())
