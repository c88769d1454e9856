"""Public copies: metadata gone (read back with exiftool and PyAV), faces hidden, the
original untouched, the derivation signed in the ledger; bad input refused cleanly."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from athar.errors import InputError
from athar.publish.copy import PUBLISH_COPY, CopyOptions, copies_of, public_copy
from athar.publish.faces import Box, detect_faces, parse_region
from athar.vault.vault import Vault

WITNESS_AR = "مُحمّد أحمد الحلبي"
WITNESS_LATIN = "Mohammad al-Halabi"
SERIAL = "SN-4XJ9-77812"
SAFE_GROUPS = {"ExifTool", "System", "File", "JFIF", "Composite", "PNG", "QuickTime", "Track1"}


def exiftool(path: Path) -> dict[str, object]:
    if shutil.which("exiftool") is None:
        if os.environ.get("CI"):
            pytest.fail("exiftool not found: install libimage-exiftool-perl", pytrace=False)
        pytest.skip("exiftool not found (Debian: libimage-exiftool-perl)")
    out = subprocess.run(
        ["exiftool", "-j", "-a", "-G1", "-u", "-b", str(path)],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    tags = dict(json.loads(out)[0])
    for where in ("SourceFile", "System:Directory"):  # where the test put it, not in it
        tags.pop(where, None)
    return tags


def tagged_photo(folder: Path) -> Path:
    """The astronaut photo as a phone would save it: GPS, serial, a caption naming the
    witness (EXIF UserComment and ImageDescription, XMP), in a file named after him."""
    img = Image.fromarray(skdata.astronaut())
    exif = Image.Exif()
    exif[0x010F] = "Samsung"  # Make
    exif[0x0110] = "SM-G991B"  # Model
    exif[0x010E] = f"صورة من {WITNESS_AR}"  # ImageDescription
    exif[0x013B] = WITNESS_LATIN  # Artist
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0xA431] = SERIAL  # BodySerialNumber
    exif_ifd[0x9286] = b"ASCII\x00\x00\x00" + WITNESS_LATIN.encode()  # UserComment
    exif_ifd[0x9003] = "2017:03:14 09:12:00"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (33.0, 34.0, 16.0), "E", (36.0, 24.0, 8.0)
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
        '22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'dc:creator="{WITNESS_LATIN}"/></rdf:RDF></x:xmpmeta>'
    ).encode()
    path = folder / "IMG_mohammad-halabi_0042.jpg"
    img.save(path, "JPEG", exif=exif, xmp=xmp, quality=95)
    return path


def tagged_video(folder: Path) -> Path:
    path = folder / "clip-halabi.mp4"
    frame = np.asarray(Image.fromarray(skdata.astronaut()).resize((320, 320)))
    with av.open(str(path), "w") as c:
        c.metadata.update({"title": WITNESS_LATIN, "comment": SERIAL, "location": "+33.57+036.40/"})
        v = c.add_stream("libx264", rate=10)
        v.width = v.height = 320
        v.pix_fmt = "yuv420p"
        a = c.add_stream("aac", rate=8000, layout="mono")
        for _ in range(12):
            for p in v.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 8000), dtype=np.float32), "fltp", "mono")
        samples.sample_rate = 8000
        for p in [*a.encode(samples), *a.encode(None)]:
            c.mux(p)
    return path


@pytest.fixture
def photo_item(vault: Vault, tmp_path: Path) -> tuple[Vault, str, Path]:
    src = tagged_photo(tmp_path)
    report = vault.add([src])
    item = report.results[0].item
    assert item is not None
    return vault, item.id, src


def faces_remaining(before: np.ndarray, after: np.ndarray) -> list[Box]:
    """Faces found in the original that the detector still finds, at the same place, in
    the copy (the mosaic itself can look face-like to a cascade nearby: not a face)."""
    centres = [(b.x + b.w // 2, b.y + b.h // 2) for b in detect_faces(before)]
    assert centres
    return [
        b
        for b in detect_faces(after)
        for cx, cy in centres
        if b.x <= cx < b.x + b.w and b.y <= cy < b.y + b.h
    ]


def assert_clean(path: Path, original: Path) -> None:
    tags = exiftool(path)
    groups = {k.split(":")[0] for k in tags}
    assert groups <= SAFE_GROUPS, groups - SAFE_GROUPS
    blob = path.read_bytes()
    text = json.dumps(tags, ensure_ascii=False)
    for secret in (WITNESS_AR, WITNESS_LATIN, SERIAL, "Samsung", "SM-G991B", "halabi", "2017:03"):
        assert secret not in text
        assert secret.encode() not in blob
    assert "GPS" not in text and "Serial" not in text
    assert original.name not in text


def test_image_copy_strips_everything_and_hides_the_face(photo_item, tmp_path: Path) -> None:
    vault, item_id, src = photo_item
    before = exiftool(src)
    assert any("GPS" in k for k in before) and WITNESS_LATIN in json.dumps(before)
    out = tmp_path / "public.jpg"
    result = public_copy(vault, item_id, out, CopyOptions())
    assert_clean(out, src)
    assert result["faces"]["hidden"] == 1
    # the face is gone: the detector no longer finds it, and the pixels there changed a lot
    rgb = np.asarray(Image.open(out).convert("RGB"))
    assert faces_remaining(skdata.astronaut(), rgb) == []
    original = skdata.astronaut().astype(int)
    face = (slice(60, 160), slice(170, 280))
    assert np.abs(rgb[face].astype(int) - original[face]).mean() > 12
    elsewhere = (slice(300, 500), slice(0, 120))  # far from the face: barely touched
    assert np.abs(rgb[elsewhere].astype(int) - original[elsewhere]).mean() < 6
    # the original in the vault is unchanged, and the derivation is signed
    assert b"".join(vault.read(vault.item(item_id))) == src.read_bytes()
    (recorded,) = copies_of(vault, item_id)
    assert recorded["sha256"] == result["sha256"]
    assert recorded["original_sha256"] == vault.item(item_id).sha256
    event = next(e for e in vault.events() if e.event.kind == PUBLISH_COPY)
    assert event.signature_valid()


def test_png_copy_without_face_detection_keeps_the_face_but_not_the_tags(
    photo_item, tmp_path: Path
) -> None:
    vault, item_id, src = photo_item
    out = tmp_path / "public.png"
    result = public_copy(vault, item_id, out, CopyOptions(faces=False))
    assert_clean(out, src)
    assert result["faces"] == {"detector": None, "hidden": 0, "mode": "blur"}
    assert detect_faces(np.asarray(Image.open(out).convert("RGB")))


def test_manual_region_is_hidden(photo_item, tmp_path: Path) -> None:
    vault, item_id, _ = photo_item
    out = tmp_path / "region.png"
    region = parse_region("300,300,150,150")
    public_copy(vault, item_id, out, CopyOptions(faces=False, mode="pixelate", regions=(region,)))
    rgb = np.asarray(Image.open(out).convert("RGB")).astype(int)
    patch = rgb[310:440, 310:440]
    # pixelated: the patch is made of a few flat cells
    assert len({tuple(p) for p in patch.reshape(-1, 3)}) <= 49
    assert len({tuple(p) for p in rgb[10:140, 10:140].reshape(-1, 3)}) > 500


def test_video_copy_has_no_tags_no_audio_and_no_face(vault: Vault, tmp_path: Path) -> None:
    src = tagged_video(tmp_path)
    with av.open(str(src)) as got:
        assert got.metadata.get("title") == WITNESS_LATIN and got.streams.audio
    item = vault.add([src]).results[0].item
    assert item is not None
    out = tmp_path / "public.mp4"
    result = public_copy(vault, item.id, out, CopyOptions())
    assert result["frames"] == 12 and result["faces"]["hidden"] >= 4
    assert_clean(out, src)
    with av.open(str(out)) as got:
        assert not got.streams.audio
        assert "title" not in got.metadata and "comment" not in got.metadata
        frames = [f.to_ndarray(format="rgb24") for f in got.decode(video=0)]
    assert len(frames) == 12
    with av.open(str(src)) as got:
        first = next(got.decode(video=0)).to_ndarray(format="rgb24")
    assert all(faces_remaining(first, f) == [] for f in frames)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("exists.jpg", "already exists"),
        ("nofolder/x.jpg", "folder does not exist"),
        ("public.gif", "a public copy is written as"),
        ("public.mp4", "give --out a name ending in one of"),
    ],
)
def test_bad_output_is_refused_and_nothing_recorded(
    photo_item, tmp_path: Path, name: str, message: str
) -> None:
    vault, item_id, _ = photo_item
    (tmp_path / "exists.jpg").write_bytes(b"mine")
    before = len(vault.events())
    with pytest.raises(InputError, match=message):
        public_copy(vault, item_id, tmp_path / name, CopyOptions())
    assert len(vault.events()) == before
    assert (tmp_path / "exists.jpg").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".jpg", ".mp4", ".gif")) == [
        "IMG_mohammad-halabi_0042.jpg",
        "exists.jpg",
    ]


def test_not_a_picture_is_refused(vault: Vault, tmp_path: Path) -> None:
    text = tmp_path / "شهادة.txt"
    text.write_text("شهادة مكتوبة", encoding="utf-8")
    fake = tmp_path / "broken.jpg"
    fake.write_bytes(b"\xff\xd8\xff not really a jpeg")
    report = vault.add([text, fake])
    ids = [r.item.id for r in report.results if r.item]
    with pytest.raises(InputError, match="not an image or a video"):
        public_copy(vault, ids[0], tmp_path / "a.jpg", CopyOptions())
    with pytest.raises(InputError, match="not an image that can be read"):
        public_copy(vault, ids[1], tmp_path / "b.jpg", CopyOptions())
    assert not (tmp_path / "a.jpg").exists() and not (tmp_path / "b.jpg").exists()


@pytest.mark.parametrize("bad", ["1,2,3", "a,b,c,d", "-1,0,10,10", "0,0,0,5"])
def test_bad_region_is_refused(bad: str) -> None:
    with pytest.raises(InputError, match="x,y,w,h"):
        parse_region(bad)


def test_cli_copy(cli, photo_item, tmp_path: Path) -> None:
    _, item_id, src = photo_item
    out = tmp_path / "cli.jpg"
    result = cli("publish", "copy", item_id[:10], "--out", str(out), "--region", "0,0,50,50")
    assert result.exit_code == 0, result.output
    assert "1 face(s)" in result.output
    assert_clean(out, src)
    result = cli("publish", "copy", item_id[:10], "--out", str(out), "--json")
    assert result.exit_code == 2 and json.loads(result.output)["ok"] is False
    result = cli("publish", "copy", item_id[:10], "--out", str(tmp_path / "x.jpg"), "--blur", "x")
    assert result.exit_code == 2


def test_box_json() -> None:
    assert Box(1, 2, 3, 4).to_json() == {"x": 1, "y": 2, "w": 3, "h": 4}
    assert io.BytesIO  # keep the import honest for readers of the helpers
