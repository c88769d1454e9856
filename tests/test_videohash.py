"""Video bag-of-frames: a clip cut from a longer video and re-encoded smaller is found,
at the right offset; unrelated footage and broken containers are not."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from athar.errors import InputError
from athar.verify.phash import hash_image
from athar.verify.videohash import VideoHashes, VideoIndex, hash_video

FPS = 10


def scene(seed: int, seconds: int, width: int = 320, height: int = 240) -> list[np.ndarray]:
    """Frames of a camera panning over a large textured landscape with a moving disc:
    every second shows different content, as real footage does."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(12, 12 + seconds * 3, 3), dtype=np.uint8)
    land_w = width + seconds * 80
    land = np.asarray(
        Image.fromarray(coarse).resize((land_w, height), Image.Resampling.BICUBIC), np.uint8
    )
    fine = rng.integers(-25, 25, size=land.shape)
    land = np.clip(land.astype(np.int16) + fine, 0, 255).astype(np.uint8)
    frames = []
    for i in range(seconds * FPS):
        x = i * 8  # 80 px a second
        frame = land[:, x : x + width].copy()
        cx, cy = (40 + 13 * i) % width, (60 + 7 * i) % height
        yy, xx = np.ogrid[:height, :width]
        frame[(xx - cx) ** 2 + (yy - cy) ** 2 < 400] = (250, 240, 20)
        frames.append(frame)
    return frames


def encode(
    frames: list[np.ndarray], codec: str = "mpeg4", size: tuple[int, int] | None = None
) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream(codec, rate=FPS)
        h, w = frames[0].shape[:2]
        stream.width, stream.height = size or (w, h)
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 800_000
        for arr in frames:
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            if size:
                frame = frame.reformat(width=size[0], height=size[1])
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


@pytest.fixture(scope="module")
def archive_videos() -> dict[str, bytes]:
    return {"long": encode(scene(1, 12)), "other": encode(scene(2, 12))}


@pytest.fixture(scope="module")
def hashed(archive_videos: dict[str, bytes]) -> dict[str, VideoHashes]:
    return {name: hash_video(data) for name, data in archive_videos.items()}


def test_frames_sampled_once_a_second(hashed: dict[str, VideoHashes]) -> None:
    video = hashed["long"]
    assert video.width == 320 and video.height == 240
    stored = video.times[video.stored]
    assert 11 <= stored.size <= 12
    assert np.all(np.diff(stored) >= 0.99)
    assert 40 <= len(video) <= 48  # probes: 4 a second (a frame each 0.1 s at 10 fps)
    assert np.all(np.diff(video.times) >= 0.19)
    sparse = hash_video(encode(scene(1, 3)), probe_every=None)
    assert sparse.stored.all() and len(sparse) == 3
    assert video.informative.all()
    assert not video.truncated and not video.damaged


def test_clip_recut_and_reencoded_smaller_is_found_with_offset(
    hashed: dict[str, VideoHashes],
) -> None:
    index = VideoIndex()
    index.add(7, hashed["long"])
    index.add(9, hashed["other"])
    clip_frames = scene(1, 12)[45:95]  # 4.5 s to 9.5 s
    clip = hash_video(encode(clip_frames, size=(160, 120)))
    found = index.search(clip)
    assert [m.item_id for m in found] == [7]
    assert found[0].offset == pytest.approx(4.5, abs=0.6)
    assert found[0].matched_frames >= 3


def test_mirrored_clip_is_found(hashed: dict[str, VideoHashes]) -> None:
    index = VideoIndex()
    index.add(7, hashed["long"])
    clip = hash_video(encode([f[:, ::-1].copy() for f in scene(1, 12)[20:70]], size=(240, 180)))
    assert [m.item_id for m in index.search(clip)] == [7]


def test_unrelated_clip_is_not_found(hashed: dict[str, VideoHashes]) -> None:
    index = VideoIndex()
    index.add(7, hashed["long"])
    clip = hash_video(encode(scene(3, 6), size=(160, 120)))
    assert index.search(clip) == []


def test_frame_grab_posted_as_photo_is_found(hashed: dict[str, VideoHashes]) -> None:
    index = VideoIndex()
    index.add(7, hashed["long"])
    still = Image.fromarray(scene(1, 12)[60]).resize((200, 150))
    buf = io.BytesIO()
    still.save(buf, "JPEG", quality=70)
    found = index.search_image(hash_image(buf.getvalue()))
    assert found and found[0][0] == 7
    assert found[0][1] == pytest.approx(6.0, abs=0.6)


def test_index_round_trips_through_bytes(hashed: dict[str, VideoHashes]) -> None:
    index = VideoIndex()
    index.add(7, hashed["long"])
    again = VideoIndex.from_bytes(index.to_bytes())
    clip = hash_video(encode(scene(1, 12)[30:80], size=(160, 120)))
    assert [m.item_id for m in again.search(clip)] == [7]
    with pytest.raises(InputError):
        VideoIndex.from_bytes(index.to_bytes()[:-3])


def test_broken_container_is_a_clear_error(archive_videos: dict[str, bytes]) -> None:
    data = archive_videos["long"]
    with pytest.raises(InputError, match="not a video"):
        hash_video(b"\x00\x00\x00\x18ftypmp42" + b"\xff" * 5000)
    with pytest.raises(InputError, match="not a video"):
        hash_video(b"this is a testimony, not a video")
    with pytest.raises(InputError):
        hash_video(data[: len(data) // 50])


def test_damage_after_the_start_keeps_earlier_frames_or_errors(
    archive_videos: dict[str, bytes],
) -> None:
    data = bytearray(archive_videos["long"])
    # overwrite the middle of the media data with garbage
    mid = len(data) // 2
    data[mid : mid + 4000] = b"\xa5" * 4000
    try:
        video = hash_video(bytes(data))
    except InputError:
        return  # a clear error is also acceptable
    assert len(video) >= 3


def test_playlist_formats_are_refused(tmp_path: Path) -> None:
    """An HLS playlist would make FFmpeg open other files; it must not be demuxed."""
    # (from a file object FFmpeg does not probe HLS at all; the whitelist is a second wall)
    secret = tmp_path / "secret.ts"
    secret.write_bytes(b"x")
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{secret}\n#EXT-X-ENDLIST\n"
    with pytest.raises(InputError):
        hash_video(playlist.encode())


def test_only_video_demuxers_are_allowed() -> None:
    """FFmpeg would open a PNG as a one-frame "video" (png_pipe); the demuxer whitelist
    refuses it, as it refuses playlists and concat lists."""
    buf = io.BytesIO()
    Image.fromarray(scene(4, 1)[0]).save(buf, "PNG")
    with pytest.raises(InputError, match="not a video"):
        hash_video(buf.getvalue())


def test_arabic_file_name(tmp_path: Path, archive_videos: dict[str, bytes]) -> None:
    path = tmp_path / "مقطع-القصف.mp4"
    path.write_bytes(archive_videos["other"])
    assert len(hash_video(path)) >= 10


def test_too_large_frames_are_refused(archive_videos: dict[str, bytes]) -> None:
    with pytest.raises(InputError, match="limit"):
        hash_video(archive_videos["long"], max_frame_pixels=320 * 200)


def test_sampling_stops_at_the_duration_cap(archive_videos: dict[str, bytes]) -> None:
    video = hash_video(archive_videos["long"], max_seconds=3.5)
    assert video.truncated
    assert video.times.max() <= 3.5
