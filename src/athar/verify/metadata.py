"""What a file says about itself: EXIF/XMP/IPTC, container tags, PDF document info.

Files come from anyone, including those who forge or strip metadata, so reading must
never crash and never trust: every parser failure becomes a ``Metadata`` with
``valid=False`` and the reason (an ``AtharError`` template, so faces translate it), and
text that is not what its format says it is (an Arabic caption written as Windows-1256
into an EXIF field that Pillow reads as Latin-1) is kept as best it can be read *and*
reported as a problem, because a broken encoding is itself a clue about where a file
has been. Nothing here writes to disk; the caller stores the result sealed.
"""

from __future__ import annotations

import io
import math
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import av
from PIL import ExifTags, Image, IptcImagePlugin, TiffImagePlugin, UnidentifiedImageError

from athar.errors import AtharError, InputError
from athar.verify.imagedecode import MAX_PIXELS, open_image
from athar.verify.videohash import ALLOWED_DEMUXERS

try:  # HEIC/HEIF (phones' default format) through libheif, when installed
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIC = True
except ImportError:  # pragma: no cover - depends on the installation
    HEIC = False

# Demuxers for sound files, beside the video ones: no playlists or concat lists.
AUDIO_DEMUXERS = "wav,mp3,flac,aac,ogg,matroska,mov,amr,aiff,caf,w64"
MAX_TEXT = 2000  # characters kept of one value (a caption, a comment)
MAX_ENTRIES = 400  # tags kept per block (EXIF, XMP...): a hostile file may hold millions
MAX_XMP_BYTES = 1 << 20
MAX_PDF_BYTES = 512 << 20
# Tags whose content is binary or huge and says nothing a verifier reads directly.
_SKIP_EXIF = {"MakerNote", "PrintImageMatching", "JPEGInterchangeFormat", "StripOffsets"}

_ISO6709 = re.compile(r"([+-]\d{1,2}(?:\.\d+)?)([+-]\d{1,3}(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?")
_IPTC = {
    (2, 5): "object_name",
    (2, 25): "keywords",
    (2, 55): "date_created",
    (2, 60): "time_created",
    (2, 80): "byline",
    (2, 90): "city",
    (2, 92): "sublocation",
    (2, 95): "province_state",
    (2, 101): "country",
    (2, 105): "headline",
    (2, 110): "credit",
    (2, 115): "source",
    (2, 116): "copyright",
    (2, 120): "caption",
}


@dataclass
class Metadata:
    """The metadata of one file, as JSON-ready values."""

    kind: str  # image | video | audio | pdf | other
    format: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)  # taken, gps, camera, software...
    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)  # exif, gps, xmp, iptc...
    problems: list[dict[str, Any]] = field(default_factory=list)  # message templates + params
    valid: bool = True
    error: dict[str, Any] | None = None  # why the file could not be read at all

    def problem(self, template: str, **params: Any) -> None:
        self.problems.append({"message": template, "params": params})

    def fail(self, exc: AtharError) -> Metadata:
        self.valid = False
        self.error = {"message": exc.template, "params": exc.params}
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format": self.format,
            "valid": self.valid,
            "error": self.error,
            "summary": self.summary,
            "blocks": self.blocks,
            "problems": self.problems,
        }


def sniff(head: bytes) -> str:
    """The kind of file from its first bytes (names and declared types can lie)."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"avif"):
            return "image"
        if brand in (b"M4A ", b"M4B "):
            return "audio"
        return "video"
    if head.startswith((b"RIFF",)) and head[8:12] == b"WAVE":
        return "audio"
    if head.startswith((b"RIFF",)) and head[8:12] == b"AVI ":
        return "video"
    if head.startswith((b"ID3", b"fLaC", b"OggS", b"#!AMR", b"FORM")):
        return "audio"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] not in (0xFF, 0xD8):
        return "audio"  # an MPEG audio frame sync (0xFFD8 starts a JPEG)
    if head.startswith((b"\x1a\x45\xdf\xa3", b"\x00\x00\x01\xba", b"FLV")):
        return "video"
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"II*\x00", b"MM\x00*", b"BM")) or (
        head.startswith(b"RIFF") and head[8:12] == b"WEBP"
    ):
        return "image"
    return "other"


def extract(data: bytes) -> Metadata:
    """Read the metadata of a file's content; never raises for bad content."""
    kind = sniff(data[:32])
    try:
        if kind == "image":
            return _image(data)
        if kind in ("video", "audio"):
            return _container(data, kind)
        if kind == "pdf":
            return _pdf(data)
    except AtharError as exc:
        return Metadata(kind).fail(exc)
    return Metadata(kind)


# -- text ------------------------------------------------------------------------------


def _text(meta: Metadata, where: str, value: str | bytes) -> str:
    """Text as it was meant, with a problem noted when it is not valid in its encoding.

    EXIF ASCII and TIFF tags come out of Pillow as Latin-1; phones write UTF-8 there, so
    Latin-1 text that is valid UTF-8 is read back as UTF-8. Anything else non-ASCII was
    written in another code page: kept as read, and reported."""
    if isinstance(value, bytes):
        raw = value
    else:
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            return _clip(_printable(value))
    raw = raw.rstrip(b"\x00")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        meta.problem(
            "{field}: the text is not valid UTF-8 (written in another encoding?); shown as Latin-1",
            field=where,
        )
        text = raw.decode("latin-1")
    return _clip(_printable(text))


def _plain(text: str) -> str:
    """Text already decoded by its parser (XML, PDF): only cleaned and clipped."""
    return _clip(_printable(text))


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() or c in "\n\t" else "\ufffd" for c in text)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _json_value(meta: Metadata, where: str, value: Any, depth: int = 0) -> Any:
    if isinstance(value, TiffImagePlugin.IFDRational):
        num, den = value.numerator, value.denominator
        return None if not den else round(float(num) / float(den), 8)
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _text(meta, where, value)
    if isinstance(value, bytes):
        if len(value) > 64:
            return f"<{len(value)} bytes>"
        if value.isascii() and all(32 <= b < 127 or b == 0 for b in value):
            return value.rstrip(b"\x00").decode("ascii")
        return value.hex()
    if isinstance(value, tuple | list) and depth < 3:
        return [_json_value(meta, where, v, depth + 1) for v in list(value)[:64]]
    return _clip(repr(value))


# -- images ----------------------------------------------------------------------------


def _image(data: bytes) -> Metadata:
    meta = Metadata("image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            raise InputError(
                "the image declares more than {limit} pixels; refused as a possible "
                "decompression bomb",
                limit=MAX_PIXELS,
            ) from None
        except UnidentifiedImageError:
            raise InputError("this file is not an image in a format Athar can read") from None
        except Exception:  # Pillow's parsers raise many types on hostile headers
            raise InputError(
                "the image is damaged or incomplete (truncated) and cannot be decoded"
            ) from None
        meta.format = img.format
        width, height = img.size
        meta.summary.update(width=width, height=height)
        try:
            _exif(meta, img)
        except Exception:  # a broken EXIF block must not hide the rest
            meta.problem("the EXIF block is damaged and was skipped")
        try:
            _xmp(meta, img)
        except Exception:
            meta.problem("the XMP block is damaged and was skipped")
        try:
            _iptc(meta, img)
        except Exception:
            meta.problem("the IPTC block is damaged and was skipped")
    # Metadata can be intact while the pixels are not (a file cut short in transit) or
    # while the declared size is a bomb: the decoder's verdict makes the whole invalid.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            open_image(data)
    except InputError as exc:
        return meta.fail(exc)
    return meta


def _exif(meta: Metadata, img: Image.Image) -> None:
    exif = img.getexif()
    if not exif:
        return
    block: dict[str, Any] = {}

    def put(tags: Any, names: dict[int, str], out: dict[str, Any]) -> None:
        for tag, value in list(tags.items())[:MAX_ENTRIES]:
            name = names.get(tag, f"0x{tag:04x}")
            if name in _SKIP_EXIF:
                continue
            if name == "UserComment" and isinstance(value, bytes):
                out[name] = _user_comment(meta, value)
            else:
                out[name] = _json_value(meta, f"EXIF {name}", value)

    put(exif, ExifTags.TAGS, block)
    put(exif.get_ifd(ExifTags.IFD.Exif), ExifTags.TAGS, block)
    gps: dict[str, Any] = {}
    put(exif.get_ifd(ExifTags.IFD.GPSInfo), ExifTags.GPSTAGS, gps)
    block.pop("ExifOffset", None)
    block.pop("GPSInfo", None)
    meta.blocks["exif"] = block
    if gps:
        meta.blocks["gps"] = gps
        place = _gps_position(gps)
        if place is not None:
            meta.summary["gps"] = place
        elif "GPSLatitude" in gps or "GPSLongitude" in gps:
            meta.problem("the GPS position in the EXIF block is incomplete or out of range")
    taken = block.get("DateTimeOriginal") or block.get("DateTime")
    if isinstance(taken, str):
        when = _exif_time(taken, block.get("OffsetTimeOriginal") or block.get("OffsetTime"))
        if when is None:
            meta.problem("the EXIF date {value} is not a valid date", value=taken[:40])
        else:
            meta.summary["taken"] = when
    for key, tag in (("make", "Make"), ("model", "Model"), ("software", "Software")):
        if isinstance(block.get(tag), str) and block[tag].strip():
            meta.summary[key] = block[tag].strip()


def _user_comment(meta: Metadata, value: bytes) -> str:
    """EXIF UserComment: an 8-byte character-code header, then the text."""
    code, body = value[:8], value[8:]
    if code.startswith(b"UNICODE"):
        for enc in ("utf-16-be", "utf-16-le"):
            try:
                return _clip(_printable(body.decode(enc).rstrip("\x00")))
            except UnicodeDecodeError:
                continue
        meta.problem("{field}: the text is not valid UTF-16", field="EXIF UserComment")
        return body.hex()[:MAX_TEXT]
    return _text(meta, "EXIF UserComment", body)


def _exif_time(value: str, offset: Any) -> str | None:
    try:
        when = datetime.strptime(value.strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    text = when.isoformat()
    if isinstance(offset, str) and re.fullmatch(r"[+-]\d\d:\d\d", offset.strip()):
        text += offset.strip()
    return text


def _gps_position(gps: dict[str, Any]) -> dict[str, float] | None:
    def degrees(value: Any, ref: Any, negative: str, limit: float) -> float | None:
        if not isinstance(value, list) or len(value) != 3:
            return None
        if not all(isinstance(v, int | float) for v in value):
            return None
        d = float(value[0]) + float(value[1]) / 60 + float(value[2]) / 3600
        if ref == negative:
            d = -d
        return round(d, 7) if abs(d) <= limit else None

    lat = degrees(gps.get("GPSLatitude"), gps.get("GPSLatitudeRef"), "S", 90)
    lon = degrees(gps.get("GPSLongitude"), gps.get("GPSLongitudeRef"), "W", 180)
    if lat is None or lon is None:
        return None
    out = {"lat": lat, "lon": lon}
    alt = gps.get("GPSAltitude")
    if isinstance(alt, int | float):
        out["alt"] = -float(alt) if gps.get("GPSAltitudeRef") in (1, "\x01", "01") else float(alt)
    return out


def _xmp(meta: Metadata, img: Image.Image) -> None:
    raw = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    if raw is None and isinstance(img, TiffImagePlugin.TiffImageFile):
        raw = img.tag_v2.get(700)
    if not raw:
        return
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > MAX_XMP_BYTES:
        meta.problem(
            "the XMP block is larger than {limit} bytes and was skipped", limit=MAX_XMP_BYTES
        )
        return
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        # XMP never needs a DTD; entities are how XML bombs and external reads work.
        meta.problem("the XMP block declares XML entities and was refused")
        return
    start = raw.find(b"<x:xmpmeta")
    if start < 0:
        start = raw.find(b"<rdf:RDF")
    try:
        # DTDs and entities were refused above; expat >= 2.4 (bundled with Python)
        # also bounds entity expansion, so no defusedxml dependency is needed.
        packet = raw[start if start >= 0 else 0 :].split(b"<?xpacket end")[0]
        root = ET.fromstring(packet)  # noqa: S314
    except ET.ParseError:
        meta.problem("the XMP block is not well-formed XML and was skipped")
        return
    out: dict[str, Any] = {}
    for element in root.iter():
        if len(out) >= MAX_ENTRIES:
            break
        for key, value in element.attrib.items():
            name = _qname(key)
            if not name.startswith(("rdf:", "x:", "xml:")):
                out.setdefault(name, _plain(value))
        text = (element.text or "").strip()
        if text and len(element) == 0:
            name = _qname(element.tag)
            if name in ("rdf:li",):
                continue
            out.setdefault(name, _plain(text))
        # language alternatives and lists: collect their items under the property
        if _qname(element.tag) in ("rdf:Alt", "rdf:Seq", "rdf:Bag"):
            items = [(li.text or "").strip() for li in element if (li.text or "").strip()]
            parent = _parent_name(root, element)
            if items and parent:
                out.setdefault(parent, [_plain(i) for i in items[:32]])
    meta.blocks["xmp"] = out
    for key in ("exif:DateTimeOriginal", "photoshop:DateCreated", "xmp:CreateDate"):
        if key in out and "taken" not in meta.summary:
            meta.summary["taken_xmp"] = out[key]
            break


_PREFIXES = {
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "adobe:ns:meta/": "x",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://www.w3.org/XML/1998/namespace": "xml",
}


def _qname(tag: str) -> str:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return f"{_PREFIXES.get(uri, uri.rstrip('/#').rsplit('/', 1)[-1])}:{local}"
    return tag


def _parent_name(root: ET.Element, child: ET.Element) -> str | None:
    for element in root.iter():
        if child in list(element):
            return _qname(element.tag)
    return None


def _iptc(meta: Metadata, img: Image.Image) -> None:
    info = IptcImagePlugin.getiptcinfo(img)  # type: ignore[arg-type]
    if not info:
        return
    utf8 = info.get((1, 90)) in (b"\x1b%G", [b"\x1b%G"])
    out: dict[str, Any] = {}
    for key, name in _IPTC.items():
        value = info.get(key)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        texts = []
        for v in values[:64]:
            raw = bytes(v)
            if utf8 or raw.isascii():
                texts.append(_text(meta, f"IPTC {name}", raw))
            else:
                meta.problem(
                    "{field}: the text does not declare its encoding; shown as Latin-1",
                    field=f"IPTC {name}",
                )
                texts.append(_clip(_printable(raw.decode("latin-1"))))
        out[name] = texts if name == "keywords" else "; ".join(texts)
    if out:
        meta.blocks["iptc"] = out


# -- video and audio -------------------------------------------------------------------


def _container(data: bytes, kind: str) -> Metadata:
    meta = Metadata(kind)
    try:
        container = av.open(
            io.BytesIO(data),
            mode="r",
            container_options={"format_whitelist": ALLOWED_DEMUXERS + "," + AUDIO_DEMUXERS},
            metadata_errors="surrogateescape",
        )
    except (av.error.FFmpegError, ValueError, OSError, UnicodeDecodeError):
        raise InputError(
            "this file is not a video Athar can read (unknown format or broken container)"
        ) from None
    with container:
        meta.format = container.format.name
        tags = _tags(meta, "container", dict(container.metadata))
        meta.blocks["container"] = tags
        if container.duration is not None and container.duration > 0:
            meta.summary["duration"] = round(container.duration / av.time_base, 3)
        if container.bit_rate:
            meta.summary["bit_rate"] = int(container.bit_rate)
        streams = []
        for stream in list(container.streams)[:32]:
            info: dict[str, Any] = {"index": stream.index, "type": stream.type}
            ctx: Any = stream.codec_context  # video or audio context, by stream type
            if ctx is not None and ctx.codec is not None:
                info["codec"] = ctx.codec.name
            if stream.type == "video":
                info.update(width=int(ctx.width), height=int(ctx.height))
                if stream.average_rate:
                    info["fps"] = round(float(stream.average_rate), 3)
            elif stream.type == "audio":
                info.update(sample_rate=int(ctx.sample_rate), channels=int(ctx.channels))
            if stream.duration is not None and stream.time_base is not None:
                info["duration"] = round(float(stream.duration * stream.time_base), 3)
            stream_tags = _tags(meta, f"stream {stream.index}", dict(stream.metadata))
            if stream_tags:
                info["tags"] = stream_tags
            streams.append(info)
        meta.blocks["streams"] = {"list": streams}
    if not any(s["type"] in ("video", "audio") for s in streams):
        raise InputError("the file has no video or audio stream")
    if any(s["type"] == "video" for s in streams):
        meta.kind = "video"
    _container_summary(meta, tags, streams)
    return meta


def _tags(meta: Metadata, where: str, tags: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in list(tags.items())[:MAX_ENTRIES]:
        k = _surrogates(meta, where, key)
        out[k] = _surrogates(meta, f"{where} {k}", value)
    return out


def _surrogates(meta: Metadata, where: str, text: str) -> str:
    """FFmpeg hands tags over as bytes; undecodable ones arrive here as surrogates."""
    if any("\udc80" <= c <= "\udcff" for c in text):
        raw = text.encode("utf-8", "surrogateescape")
        return _text(meta, where, raw)
    return _clip(_printable(text))


def _container_summary(meta: Metadata, tags: dict[str, str], streams: list[dict[str, Any]]) -> None:
    created = tags.get("creation_time") or tags.get("com.apple.quicktime.creationdate")
    if created is None:
        created = next(
            (s["tags"]["creation_time"] for s in streams if "creation_time" in s.get("tags", {})),
            None,
        )
    if created:
        meta.summary["created"] = created
    for key in ("com.apple.quicktime.location.ISO6709", "location", "location-eng"):
        if key in tags:
            place = parse_iso6709(tags[key])
            if place is None:
                meta.problem(
                    "the location {value} is not a valid ISO 6709 position", value=tags[key][:60]
                )
            else:
                meta.summary["gps"] = place
            break
    for key, tag in (
        ("encoder", "encoder"),
        ("make", "com.apple.quicktime.make"),
        ("model", "com.apple.quicktime.model"),
        ("software", "com.apple.quicktime.software"),
    ):
        if tags.get(tag):
            meta.summary[key] = tags[tag]
    video = [s for s in streams if s["type"] == "video"]
    if video:
        meta.summary.update(width=video[0].get("width"), height=video[0].get("height"))


def parse_iso6709(text: str) -> dict[str, float] | None:
    """An ISO 6709 point in decimal degrees (what phones write): +33.5138+036.2765+680/."""
    found = _ISO6709.match(text.strip())
    if found is None:
        return None
    lat, lon = float(found.group(1)), float(found.group(2))
    if abs(lat) > 90 or abs(lon) > 180:
        return None
    out = {"lat": lat, "lon": lon}
    if found.group(3):
        out["alt"] = float(found.group(3))
    return out


# -- PDF -------------------------------------------------------------------------------


def _pdf(data: bytes) -> Metadata:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    meta = Metadata("pdf", format="PDF")
    if len(data) > MAX_PDF_BYTES:
        raise InputError("the PDF is larger than {limit} bytes", limit=MAX_PDF_BYTES)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                meta.summary["encrypted"] = True
                if not reader.decrypt(""):
                    meta.problem("the PDF is encrypted; its document information is hidden")
                    return meta
            meta.summary["pages"] = len(reader.pages)
            doc_info: dict[Any, Any] = dict(reader.metadata or {})
            block: dict[str, Any] = {}
            for key, value in list(doc_info.items())[:MAX_ENTRIES]:
                name = str(key).lstrip("/")
                block[name] = _plain(str(value))
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError):
        raise InputError("the PDF is damaged and its document information cannot be read") from None
    meta.blocks["pdf"] = block
    for key, tag in (
        ("created", "CreationDate"),
        ("modified", "ModDate"),
        ("author", "Author"),
        ("creator", "Creator"),
        ("producer", "Producer"),
        ("title", "Title"),
    ):
        if block.get(tag):
            meta.summary[key] = block[tag]
    return meta
