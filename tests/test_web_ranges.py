"""Byte ranges on the decrypting file viewer: a video can seek and a download cut by a
dropping satellite link resumes where it stopped, with nothing decrypted on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from athar.vault.vault import Vault
from athar.web import ranges
from athar.web.app import create_app
from athar.web.state import Settings
from test_web_fixtures import BASE, PASSPHRASE, build_world, login

# ~1.3 MiB: several of the vault's stream chunks, so ranges cross chunk borders.
CONTENT = ("شهادة: قصف الحي الشرقي، الساعة الثالثة فجراً\n".encode() * 20000)[:1_300_001]


@given(
    st.lists(st.binary(min_size=0, max_size=40), max_size=12),
    st.integers(0, 600),
    st.integers(0, 600),
    st.booleans(),
)
def test_window_equals_slicing(chunks: list[bytes], a: int, b: int, drain: bool) -> None:
    whole = b"".join(chunks)
    first, last = min(a, b), max(a, b)
    assert b"".join(ranges.window(chunks, first, last, drain)) == whole[first : last + 1]


@given(st.integers(0, 5000), st.text(max_size=30))
def test_parse_never_crashes_and_stays_inside(size: int, header: str) -> None:
    try:
        span = ranges.parse(header, size)
    except ranges.Unsatisfiable:
        return
    if span is not None:
        assert 0 <= span[0] <= span[1] < size


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=5-2", None),  # invalid: ignored, whole file
        ("bytes=0-1,5-9", None),  # multi-range: whole file
        ("items=0-9", None),
        (None, None),
    ],
)
def test_parse(header: str | None, expected: tuple[int, int] | None) -> None:
    assert ranges.parse(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=250-300"])
def test_parse_unsatisfiable(header: str) -> None:
    with pytest.raises(ranges.Unsatisfiable):
        ranges.parse(header, 100)


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    root = tmp_path_factory.mktemp("ranges")
    world = build_world(root)
    doc = root / "شهادة-طويلة.txt"
    doc.write_bytes(CONTENT)
    with Vault.open(world.vault_dir, PASSPHRASE) as vault:
        vault.add([doc], "")
        item = next(i.id for i in vault.items() if i.name == doc.name)
    doc.unlink()
    with TestClient(create_app(world.vault_dir, PASSPHRASE, Settings()), base_url=BASE) as app:
        yield login(TestClient(app.app, base_url=BASE), "verifier"), item


def test_whole_file_says_it_accepts_ranges(viewer: tuple[TestClient, str]) -> None:
    client, item = viewer
    full = client.get(f"/media/{item}/raw")
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes"
    assert full.content == CONTENT


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=65530-65600", 65530, 65600),  # across a stream chunk border
        ("bytes=1000000-", 1_000_000, len(CONTENT) - 1),
        ("bytes=-17", len(CONTENT) - 17, len(CONTENT) - 1),
    ],
)
def test_ranges_return_the_right_bytes(
    viewer: tuple[TestClient, str], header: str, first: int, last: int
) -> None:
    client, item = viewer
    part = client.get(f"/media/{item}/raw", headers={"range": header})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes {first}-{last}/{len(CONTENT)}"
    assert int(part.headers["content-length"]) == last - first + 1
    assert part.content == CONTENT[first : last + 1]
    assert part.headers["cache-control"] == "no-store"


def test_resumed_download_equals_the_original(viewer: tuple[TestClient, str]) -> None:
    """A download cut after 400,000 bytes is finished with a range request."""
    client, item = viewer
    got = bytearray(client.get(f"/media/{item}/raw", headers={"range": "bytes=0-399999"}).content)
    rest = client.get(f"/media/{item}/raw", headers={"range": f"bytes={len(got)}-"})
    got += rest.content
    assert hashlib.sha256(got).digest() == hashlib.sha256(CONTENT).digest()


def test_out_of_file_range_is_416_and_roles_still_apply(
    viewer: tuple[TestClient, str], tmp_path: Path
) -> None:
    client, item = viewer
    bad = client.get(f"/media/{item}/raw", headers={"range": f"bytes={len(CONTENT)}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(CONTENT)}"
    anon = TestClient(client.app, base_url=BASE)
    denied = anon.get(f"/media/{item}/raw", headers={"range": "bytes=0-9"}, follow_redirects=False)
    assert denied.status_code in (303, 401, 403) and CONTENT[:10] not in denied.content


def test_file_list_pages(viewer: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from athar.web.routes import media

    monkeypatch.setattr(media, "MEDIA_PAGE", 1)
    client, item = viewer
    first, second = client.get("/media"), client.get("/media?page=1")
    assert item in first.text  # newest first
    assert item not in second.text and "page=0" in second.text and "page=2" not in second.text
