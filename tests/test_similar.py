"""Recycled-footage search through the vault: near-copies flagged on ingest, found by
`athar similar` with distance and first-seen date; a clip cut from a longer video and
re-encoded smaller is found at its offset; the index on disk is sealed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from athar.vault.vault import Vault
from athar.verify.service import INDEX_FILE, MediaService
from test_videohash import encode  # the same synthetic clips as the hashing tests

FPS = 10


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC), np.int16)
    img = img + rng.integers(-12, 12, size=img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def save(img: Image.Image, path: Path, quality: int = 90) -> Path:
    img.save(path, "JPEG", quality=quality)
    return path


def scene(seed: int, seconds: int, width: int = 320, height: int = 240) -> list[np.ndarray]:
    """A camera panning over a textured landscape: every second shows new content."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(12, 12 + seconds * 3, 3), dtype=np.uint8)
    land = np.asarray(
        Image.fromarray(coarse).resize((width + seconds * 80, height), Image.Resampling.BICUBIC)
    )
    return [land[:, i * 8 : i * 8 + width].copy() for i in range(seconds * FPS)]


def test_near_copy_flagged_on_ingest_and_found_by_similar(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    original = save(photo(1), tmp_path / "الأصل.jpg")
    cli("init")
    first = json.loads(cli("add", str(original), "--note", "مصدر: شبكة حلب", "--json").stdout)
    assert first["similar"] == {}
    # a re-post: cropped by 8 %, shrunk, recompressed hard, under another name
    img = photo(1)
    w, h = img.size
    copy = img.crop((int(w * 0.04), int(h * 0.04), int(w * 0.96), int(h * 0.96)))
    repost = save(copy.resize((400, 280)), tmp_path / "repost.jpg", quality=35)
    unrelated = save(photo(2), tmp_path / "other.jpg")
    added = json.loads(cli("add", str(repost), str(unrelated), "--json").stdout)
    ids = {Path(r["path"]).name: r["id"] for r in added["results"]}
    flagged = added["similar"]
    assert list(flagged) == [ids["repost.jpg"]]
    assert flagged[ids["repost.jpg"]][0]["id"] == first["results"][0]["id"]

    found = json.loads(cli("similar", str(repost), "--json").stdout)["similar"]
    by_id = {s["id"]: s for s in found}
    orig_id = first["results"][0]["id"]
    assert orig_id in by_id and ids["other.jpg"] not in by_id
    assert by_id[orig_id]["distance"] <= 31
    assert by_id[orig_id]["note"] == "مصدر: شبكة حلب"
    assert by_id[orig_id]["first_seen"] < by_id[ids["repost.jpg"]]["first_seen"]
    # by item id: the item itself is left out
    by_item = json.loads(cli("similar", ids["repost.jpg"][:10], "--json").stdout)["similar"]
    assert [s["id"] for s in by_item] == [orig_id]
    none = json.loads(cli("similar", ids["other.jpg"][:10], "--json").stdout)["similar"]
    assert none == []
    fresh = save(photo(9), tmp_path / "جديد.jpg")
    assert "No similar item in the archive" in cli("similar", str(fresh)).stdout
    assert cli("similar", str(tmp_path / "missing.jpg")).exit_code != 0


def test_similar_refuses_files_it_cannot_compare(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    text = tmp_path / "شهادة.txt"
    text.write_text("شهادة", encoding="utf-8")
    out = cli("similar", str(text), "--json")
    assert out.exit_code == 2
    assert "only pictures and videos" in json.loads(out.stdout)["error"]
    truncated = tmp_path / "cut.jpg"
    data = (save(photo(3), tmp_path / "whole.jpg")).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    out = cli("similar", str(truncated), "--json")
    assert out.exit_code == 2 and "truncated" in json.loads(out.stdout)["error"]


def test_clip_cut_from_longer_video_and_reencoded_is_found(tmp_path: Path, vault: Vault) -> None:
    long_frames = scene(7, 12)
    (tmp_path / "long.mp4").write_bytes(encode(long_frames))
    (tmp_path / "other.mp4").write_bytes(encode(scene(8, 6)))
    # seconds 5-9 of the long video, re-encoded at half the resolution
    (tmp_path / "clip.mp4").write_bytes(encode(long_frames[50:90], size=(160, 120)))
    service = MediaService(vault)
    report = vault.add([tmp_path / "long.mp4", tmp_path / "other.mp4"])
    done = service.ingest([r.item for r in report.results if r.item is not None])
    assert [d.similar for d in done] == [[], []]
    assert all(d.analysis.video is not None for d in done)
    _, found = service.similar_to_file(tmp_path / "clip.mp4")
    names = [s.item.name for s in found]
    assert names == ["long.mp4"]
    assert found[0].kind == "video"
    assert found[0].offset is not None and abs(found[0].offset - 5.0) <= 1.0
    # ingesting the clip flags it, in the signed event
    clip = vault.add([tmp_path / "clip.mp4"]).results[0].item
    assert clip is not None
    flagged = MediaService(vault).ingest([clip])[0]
    assert [s.item.name for s in flagged.similar] == ["long.mp4"]
    body = MediaService(vault).analysed_event(clip)
    assert body is not None and body["similar"][0]["kind"] == "video"


def test_index_is_sealed_and_rebuilt_when_damaged(tmp_path: Path, vault: Vault) -> None:
    a = save(photo(4), tmp_path / "a.jpg")
    item = vault.add([a]).results[0].item
    assert item is not None
    service = MediaService(vault)
    done = service.ingest([item])
    pdq = done[0].analysis.image.pdq  # type: ignore[union-attr]
    sealed = (vault.root / INDEX_FILE).read_bytes()
    assert pdq not in sealed and pdq.hex().encode() not in sealed
    (vault.root / INDEX_FILE).write_bytes(sealed[:-5] + b"xxxxx")
    _, found = MediaService(vault).similar_to_file(a)
    assert [s.item.id for s in found] == [item.id]
    # a second ingest of the same item records nothing new (idempotent)
    size = vault.ledger.size()
    assert MediaService(vault).ingest([item]) == []
    assert vault.ledger.size() == size


def test_shredded_items_are_not_reported(tmp_path: Path, vault: Vault) -> None:
    a = save(photo(5), tmp_path / "a.jpg")
    item = vault.add([a]).results[0].item
    assert item is not None
    MediaService(vault).ingest([item])
    vault.shred(item, "source at risk")
    _, found = MediaService(vault).similar_to_file(a)
    assert found == []
