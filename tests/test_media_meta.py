"""Metadata of pictures, videos, sound and PDFs: what a file says about itself, read
without crashing on hostile files, kept sealed in the ledger (never as plain files)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, TiffImagePlugin

from athar.vault.vault import Vault
from athar.verify.metadata import extract, parse_iso6709, sniff
from athar.verify.service import MediaService

CAPTION = "قصف على حي الشهداء، حلب"


def picture(seed: int = 1, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(9, 12, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)


def jpeg_with_exif(artist: bytes | str = "Aleppo Media Centre", fmt: str = "JPEG") -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Samsung"
    exif[0x0110] = "SM-G930F"
    exif[0x013B] = artist
    exif[0x010E] = CAPTION.encode("utf-8")
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = "2016:12:07 09:14:55"
    ifd[0x9011] = "+03:00"
    gps = exif.get_ifd(0x8825)
    r = TiffImagePlugin.IFDRational
    gps[1], gps[2] = "N", (r(36, 1), r(12, 1), r(3456, 100))
    gps[3], gps[4] = "E", (r(37, 1), r(9, 1), r(0, 1))
    buf = io.BytesIO()
    picture().save(buf, fmt, exif=exif, quality=90)
    return buf.getvalue()


def video(metadata: dict[str, str], seconds: int = 2, fmt: str = "mp4") -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        for k, v in metadata.items():
            out.metadata[k] = v
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(seconds * 10):
            arr = np.asarray(picture(i, (160, 120)))
            out.mux(stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
        out.mux(stream.encode(None))
    return buf.getvalue()


def test_jpeg_exif_gps_time_camera_and_arabic_text() -> None:
    meta = extract(jpeg_with_exif())
    assert meta.valid and meta.kind == "image" and meta.format == "JPEG"
    assert meta.summary["gps"] == {"lat": pytest.approx(36.2096), "lon": pytest.approx(37.15)}
    assert meta.summary["taken"] == "2016-12-07T09:14:55+03:00"
    assert (meta.summary["make"], meta.summary["model"]) == ("Samsung", "SM-G930F")
    assert meta.blocks["exif"]["ImageDescription"] == CAPTION  # UTF-8 read back as written
    assert meta.problems == []


def test_heic_exif_is_read() -> None:
    meta = extract(jpeg_with_exif(fmt="HEIF"))
    assert meta.valid and meta.format == "HEIF"
    assert meta.summary["taken"] == "2016-12-07T09:14:55+03:00"
    assert meta.summary["gps"]["lat"] == pytest.approx(36.2096)


def test_metadata_in_a_wrong_encoding_is_reported_not_fatal() -> None:
    # The photographer's name written as Windows-1256 (Arabic code page), not UTF-8.
    meta = extract(jpeg_with_exif(artist="أبو محمد".encode("cp1256")))
    assert meta.valid
    assert meta.blocks["exif"]["ImageDescription"] == CAPTION
    problems = [p for p in meta.problems if p["params"].get("field") == "EXIF Artist"]
    assert problems and "not valid UTF-8" in problems[0]["message"]


def test_xmp_and_iptc() -> None:
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" photoshop:City="حلب" '
        'photoshop:DateCreated="2016-12-07T09:14:55+03:00">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="ar">{CAPTION}</rdf:li></rdf:Alt>'
        "</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()
    buf = io.BytesIO()
    picture().save(buf, "JPEG", xmp=xmp)
    meta = extract(buf.getvalue())
    assert meta.blocks["xmp"]["photoshop:City"] == "حلب"
    assert meta.blocks["xmp"]["dc:description"] == [CAPTION]
    assert meta.summary["taken_xmp"] == "2016-12-07T09:14:55+03:00"


def test_xmp_with_entities_is_refused() -> None:
    xmp = b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    buf = io.BytesIO()
    picture().save(buf, "JPEG", xmp=xmp)
    meta = extract(buf.getvalue())
    assert meta.valid and "xmp" not in meta.blocks
    assert any("entities" in p["message"] for p in meta.problems)


def test_truncated_jpeg_is_invalid_with_a_clear_reason() -> None:
    data = jpeg_with_exif()
    meta = extract(data[: len(data) * 2 // 3])
    assert not meta.valid
    assert meta.error is not None and "truncated" in meta.error["message"]
    assert meta.summary["taken"] == "2016-12-07T09:14:55+03:00"  # the header still speaks


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


def test_image_bomb_is_refused() -> None:
    meta = extract(_png_header(200_000, 200_000))
    assert not meta.valid
    assert meta.error is not None and "decompression bomb" in meta.error["message"]


def test_video_container_metadata() -> None:
    data = video(
        {
            "creation_time": "2016-12-07T09:14:55.000000Z",
            "location": "+36.2096+037.1500/",
            "title": CAPTION,
        }
    )
    meta = extract(data)
    assert meta.valid and meta.kind == "video"
    assert meta.summary["created"].startswith("2016-12-07T09:14:55")
    assert meta.summary["gps"] == {"lat": 36.2096, "lon": 37.15}
    assert meta.summary["encoder"].startswith("Lavf")
    assert meta.summary["duration"] == pytest.approx(2.0, abs=0.2)
    assert (meta.summary["width"], meta.summary["height"]) == (160, 120)
    assert meta.blocks["container"]["title"] == CAPTION
    assert meta.blocks["streams"]["list"][0]["codec"] == "mpeg4"


def test_video_tag_in_a_wrong_encoding_is_reported() -> None:
    data = video({"title": "QQQQ"}, fmt="matroska")
    # the title rewritten in Windows-1256 (4 letters, 4 bytes: the container stays valid)
    assert data.count(b"QQQQ") == 1
    bad = data.replace(b"QQQQ", "محمد".encode("cp1256"))
    meta = extract(bad)
    assert meta.valid
    assert any("UTF-8" in p["message"] for p in meta.problems)


def test_broken_video_container_is_invalid() -> None:
    data = video({})
    broken = data[:32] + bytes(range(256)) * 8
    meta = extract(broken)
    assert not meta.valid and meta.error is not None
    assert "broken container" in meta.error["message"]


def test_iso6709() -> None:
    assert parse_iso6709("+33.5138+036.2765+680.5/") == {
        "lat": 33.5138,
        "lon": 36.2765,
        "alt": 680.5,
    }
    assert parse_iso6709("-12.5-070.25/") == {"lat": -12.5, "lon": -70.25}
    assert parse_iso6709("+95.0+036.0/") is None
    assert parse_iso6709("Aleppo") is None


def test_pdf_document_info() -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.add_metadata(
        {"/Title": "تقرير الهجوم", "/Author": "مركز التوثيق", "/Producer": "LibreOffice"}
    )
    buf = io.BytesIO()
    writer.write(buf)
    meta = extract(buf.getvalue())
    assert meta.valid and meta.kind == "pdf"
    assert meta.summary["title"] == "تقرير الهجوم"
    assert meta.summary["author"] == "مركز التوثيق"
    assert meta.summary["pages"] == 1
    damaged = extract(b"%PDF-1.7\n" + b"\x00garbage" * 50)
    assert not damaged.valid


def test_sniff_ignores_names() -> None:
    assert sniff(jpeg_with_exif()[:32]) == "image"
    assert sniff(b"%PDF-1.4") == "pdf"
    assert sniff(video({})[:32]) == "video"
    assert sniff("نص عربي".encode()) == "other"


# -- fuzzing ---------------------------------------------------------------------------

SEEDS = {
    "jpeg": jpeg_with_exif(),
    "mp4": video({"title": CAPTION}, seconds=1),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash(data: bytes) -> None:
    meta = extract(data)
    assert isinstance(meta.valid, bool)
    json.dumps(meta.to_json())  # always storable


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=12),
    st.one_of(st.none(), st.integers(16, 10**6)),
)
def test_mutated_real_files_never_crash(
    name: str, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(SEEDS[name])
    for at, value in flips:
        data[at % len(data)] = value
    meta = extract(bytes(data[:cut]))
    assert meta.valid or meta.error is not None
    json.dumps(meta.to_json())


# -- stored sealed, shown by the CLI ---------------------------------------------------


def test_inspect_file_and_item_and_nothing_plain_on_disk(tmp_path: Path, vault: Vault, cli) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "صورة.jpg"
    photo.write_bytes(jpeg_with_exif())
    vault.close()
    out = cli("inspect", str(photo), "--json")
    report = json.loads(out.stdout)
    assert report["recorded"] is False
    assert report["metadata"]["summary"]["taken"] == "2016-12-07T09:14:55+03:00"
    added = json.loads(cli("add", str(photo), "--json").stdout)
    item_id = added["results"][0]["id"]
    report = json.loads(cli("inspect", item_id[:10], "--json").stdout)
    assert report["recorded"] is True
    assert report["metadata"]["blocks"]["exif"]["ImageDescription"] == CAPTION
    assert len(report["pdq"]) == 64
    text = cli("--lang", "ar", "inspect", item_id[:10]).stdout
    assert "Samsung" in text
    # neither the caption, the camera nor the hash lie anywhere in the vault in plain
    for path in vault.root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            for secret in (CAPTION.encode(), b"SM-G930F", report["pdq"].encode()):
                assert secret not in blob, path
    reopened = Vault.open(vault.root, "كلمة سر طويلة للاختبار — test passphrase")
    with reopened:
        kinds = [e.event.kind for e in reopened.events()]
        assert kinds.count("media.analysed") == 1
        assert MediaService(reopened).analysed_event(reopened.items()[0]) is not None


def test_inspect_bad_file_says_why(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(100_000, 100_000))
    report = json.loads(cli("inspect", str(bomb), "--json").stdout)
    assert report["metadata"]["valid"] is False
    out = cli("inspect", str(bomb)).stdout
    assert "decompression bomb" in out
