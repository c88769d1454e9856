"""`athar publish site`: the whole site built in a temporary folder next to the target,
then moved into place, so a failure leaves either the previous site or nothing.

Output is deterministic: two builds from the same records give the same bytes, except
`build.json`, which holds the build stamp (time and Athar version). Media are the public
copies already made with `athar publish copy` (faces hidden, metadata removed) that a
person has confirmed (athar.publish.confirm), taken from the vault where copies are kept
(or, for older copies, from a folder the user names, accepted only when their SHA-256
matches the copy the ledger records) for items linked to a published incident; nothing
is re-encoded here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

from athar import __version__
from athar.errors import InputError
from athar.publish.confirm import CONFIRMED, PENDING, CopyState, copy_states
from athar.publish.copy import copy_bytes, kept_item
from athar.publish.select import chosen_incidents, redactor_for, review
from athar.publish.site.figures import Estimates, by_area, by_month, load_estimates
from athar.publish.site.model import GROUPS, LANGS, Incident, Media, gather, linked_record_ids
from athar.publish.site.render import environment, label, month_chart, render_page
from athar.records.csvimport import escape_formula
from athar.records.formats import date_text
from athar.records.service import Records

LEAFLET_DIR = Path("/usr/share/javascript/leaflet")
LEAFLET_LICENSE = Path("/usr/share/doc/libjs-leaflet/copyright")
MARKER = "build.json"
GENERATOR = "athar publish site"
NAV = (
    ("index", "index.html"),
    ("timeline", "timeline.html"),
    ("map", "map.html"),
    ("claims", "claims.html"),
    ("downloads", "downloads.html"),
)
MEDIA_SUFFIXES = {".jpg": "image", ".jpeg": "image", ".png": "image", ".webp": "image",
                  ".mp4": "video", ".webm": "video"}  # fmt: skip
MAX_MEDIA_SCAN = 10_000


@dataclass
class SiteOptions:
    include: Sequence[str] = ()
    estimates: Path | None = None
    lang_default: str = "ar"
    tiles: str | None = None
    media_dir: Path | None = None
    accept_flagged: bool = False


def check_target(out: Path) -> None:
    """Refuse a folder that holds anything but a site this command built."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError("{path} exists and is not a folder", path=str(out))
    if out.is_dir() and any(out.iterdir()) and not is_previous_site(out):
        raise InputError(
            "{path} is not empty and is not a site made by athar publish site; "
            "choose an empty or new folder",
            path=str(out),
        )
    if not out.parent.is_dir():
        raise InputError("the folder {path} does not exist", path=str(out.parent))


def is_previous_site(out: Path) -> bool:
    try:
        data = json.loads((out / MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("generator") == GENERATOR


def check_tiles(url: str | None) -> None:
    if url is None:
        return
    if not url.startswith(("https://", "http://")) or not all(
        p in url for p in ("{z}", "{x}", "{y}")
    ):
        raise InputError(
            "--tiles takes a tile URL template such as https://host/{{z}}/{{x}}/{{y}}.png: {url}",
            url=url,
        )


def _attach_media(
    service: Records, incidents: list[Incident], media_dir: Path | None
) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """Public copies for the incidents' media, by their file name inside the site, and
    the copies left out because no one has confirmed them yet.

    Only a copy a person confirmed (and no one rejected) goes out: the face detector
    misses faces. Its bytes come from the vault, where copies are kept, or for a copy
    made before that, from *media_dir*, matched by the SHA-256 its event recorded."""
    wanted = {item for i in incidents for item in i.media_items}
    states = [s for s in copy_states(service.vault) if s.copy.get("original") in wanted]
    confirmed: dict[str, list[CopyState]] = {}
    for state in states:
        if state.status == CONFIRMED:
            confirmed.setdefault(str(state.copy["original"]), []).append(state)
    found: dict[str, Path] = {}  # sha256 -> file
    if media_dir is not None and states:
        if not media_dir.is_dir():
            raise InputError("the folder {path} does not exist", path=str(media_dir))
        recorded = {s.copy["sha256"] for ss in confirmed.values() for s in ss}
        files = sorted(p for p in media_dir.iterdir() if p.is_file())[:MAX_MEDIA_SCAN]
        for path in files:
            if path.suffix.lower() in MEDIA_SUFFIXES:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if digest in recorded:
                    found.setdefault(digest, path)
    items = service.vault.items()
    chosen: dict[str, bytes] = {}
    pseudonyms = redactor_for(service).pseudonyms
    for incident in incidents:
        for item in sorted(set(incident.media_items)):
            picked: tuple[CopyState, str, bytes] | None = None
            for state in confirmed.get(item, []):
                kept = kept_item(state.copy, items)
                if kept is not None:
                    suffix = PurePath(kept.name).suffix.lower()
                    picked = (state, suffix, copy_bytes(service.vault, state.copy, items))
                    break
                if state.copy["sha256"] in found:
                    path = found[state.copy["sha256"]]
                    picked = (state, path.suffix.lower(), path.read_bytes())
                    break
            if picked is None or picked[1] not in MEDIA_SUFFIXES:
                incident.unpublished_media += 1
                continue
            state, suffix, data = picked
            name = f"media/{pseudonyms.token(state.copy['sha256'])}{suffix}"
            chosen[name] = data
            faces = int((state.copy.get("faces") or {}).get("hidden") or 0)
            incident.media.append(Media(name, MEDIA_SUFFIXES[suffix], faces))
    unconfirmed = [
        {"copy": s.event, "original": s.copy.get("original"), "status": s.status}
        for s in states
        if s.status == PENDING and not confirmed.get(str(s.copy.get("original")))
    ]
    return chosen, unconfirmed


def _write(root: Path, rel: str, data: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def _incident_json(i: Incident) -> dict[str, Any]:
    return {
        "id": i.id,
        "text": dict(sorted(i.text.items())),
        "date": i.date,
        "coordinates": {"lat": i.coords[0], "lon": i.coords[1]} if i.coords else None,
        "violations": i.violations,
        "weapons": i.weapons,
        "perpetrator": i.perpetrator,
        "grading": i.grading,
        "killed": {g: c.to_json() for g, c in i.killed.items()},
        "injured": {g: c.to_json() for g, c in i.injured.items()},
        "victims": [
            {"name": p.name, "pseudonym": p.pseudonymised, "sex": p.sex, "age_group": p.age_group}
            for p in i.victims
        ],
        "victims_not_listed": i.hidden_victims,
        "sources": [
            {"name": p.name, "pseudonym": p.pseudonymised, "type": p.source_type} for p in i.sources
        ],
        "claims": [
            {
                "id": c.id,
                "text": dict(sorted(c.text.items())),
                "date": c.date,
                "claimed_killed": c.claimed_killed.to_json() if c.claimed_killed else None,
            }
            for c in i.claims
        ],
        "media": [
            {"file": m.file, "kind": m.kind, "faces_hidden": m.faces_hidden} for m in i.media
        ],
    }


CSV_COLUMNS = ("id", "date", "title.ar", "title.en", "place.name_ar", "place.name_latin",
               "place.admin_area", "lat", "lon", "violations", "grading",
               *(f"killed.{g}" for g in GROUPS), *(f"injured.{g}" for g in GROUPS),
               "victims_listed", "claims")  # fmt: skip


def _csv(incidents: list[Incident]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for i in incidents:
        text = {k: escape_formula(v) for k, v in i.text.items()}
        writer.writerow(
            [
                i.id,
                date_text(i.date) if i.date else "",
                *(text.get(p, "") for p in CSV_COLUMNS[2:7]),
                repr(i.coords[0]) if i.coords else "",
                repr(i.coords[1]) if i.coords else "",
                ",".join(i.violations),
                i.grading or "",
                *(i.killed[g].text().replace("–", "-") if g in i.killed else "" for g in GROUPS),
                *(i.injured[g].text().replace("–", "-") if g in i.injured else "" for g in GROUPS),
                len(i.victims),
                len(i.claims),
            ]
        )
    return buf.getvalue()


def _geojson(incidents: list[Incident]) -> dict[str, Any]:
    features = []
    for i in incidents:
        if i.coords is None:
            continue
        total = i.killed_total()
        features.append(
            {
                "type": "Feature",
                "id": i.id,
                "geometry": {"type": "Point", "coordinates": [i.coords[1], i.coords[0]]},
                "properties": {
                    "id": i.id,
                    "title": {lang: i.title(lang) for lang in LANGS},
                    "date": date_text(i.date) if i.date else None,
                    "killed": total.text() if total else None,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _script_json(data: Any) -> str:
    """JSON as a script's data, with <, > and & escaped so that no text in it can ever
    close or open a tag, even if someone pastes the file into a page."""
    text = json.dumps(data, sort_keys=True)  # ASCII: U+2028/2029 escaped too
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1) + "\n"


def _copy_leaflet(root: Path) -> None:
    if not (LEAFLET_DIR / "leaflet.min.js").is_file():
        raise InputError(
            "Leaflet is not installed (Debian package libjs-leaflet, {path}); install it to "
            "build the map",
            path=str(LEAFLET_DIR),
        )
    target = root / "static" / "leaflet"
    (target / "images").mkdir(parents=True)
    shutil.copyfile(LEAFLET_DIR / "leaflet.min.js", target / "leaflet.js")
    shutil.copyfile(LEAFLET_DIR / "leaflet.min.js.map", target / "leaflet.min.js.map")
    shutil.copyfile(LEAFLET_DIR / "leaflet.css", target / "leaflet.css")
    for image in sorted((LEAFLET_DIR / "images").iterdir()):
        shutil.copyfile(image, target / "images" / image.name)
    if LEAFLET_LICENSE.is_file():
        shutil.copyfile(LEAFLET_LICENSE, target / "COPYRIGHT.txt")


def _static(root: Path) -> None:
    from importlib import resources

    static = resources.files("athar.publish.site") / "static"
    for name in ("site.css", "map.js"):
        _write(root, f"static/{name}", (static / name).read_bytes())


def render_site(
    root: Path,
    service: Records,
    incidents: list[Incident],
    estimates: Estimates | None,
    options: SiteOptions,
    media: dict[str, bytes],
) -> None:
    areas, months = by_area(incidents), by_month(incidents)
    shared = {
        "incidents": incidents,
        "areas": areas,
        "months": months,
        "estimates": estimates,
        "groups": GROUPS,
        "victim_count": sum(len(i.victims) for i in incidents),
        "claim_count": sum(len(i.claims) for i in incidents),
        "tiles": options.tiles,
        "unmapped": sum(1 for i in incidents if i.coords is None),
        "nav": NAV,
    }
    for lang in LANGS:
        other = "en" if lang == "ar" else "ar"
        base = {**shared, "lang": lang, "other": other, "dir": "rtl" if lang == "ar" else "ltr"}
        pages: list[tuple[str, str, dict[str, Any]]] = [(n, h, {}) for n, h in NAV]
        pages += [("incident", f"incident-{i.id}.html", {"i": i}) for i in incidents]
        for template, href, extra in pages:
            context = {**base, "page": href, "chart": month_chart(months, lang), **extra}
            html = render_page(f"{template}.html", context, service.vocab)
            _write(root, f"{lang}/{href}", html)
    titles = {lang: label("site.title", lang) for lang in LANGS}
    root_page = (
        environment().get_template("root.html").render(default=options.lang_default, titles=titles)
    )
    _write(root, "index.html", root_page)
    geo = _geojson(incidents)
    _write(root, "data/incidents.geojson", _dumps(geo))
    _write(root, "data/points.js", "window.ATHAR_POINTS = " + _script_json(geo) + ";\n")
    _write(root, "data/incidents.csv", "\ufeff" + _csv(incidents))
    site = {
        "format": "athar.site.v1",
        "incidents": [_incident_json(i) for i in incidents],
        "documented": {
            "by_area": [r.to_json() for r in areas],
            "by_month": [r.to_json() for r in months],
        },
        "estimated": estimates.to_json() if estimates else None,
    }
    _write(root, "data/site.json", _dumps(site))
    _static(root)
    _copy_leaflet(root)
    for name, data in sorted(media.items()):
        _write(root, name, data)


def _replace(temp: Path, out: Path) -> None:
    """Move the finished site into place; an old site goes only once the new one is in."""
    if out.is_dir() and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / "site")
        try:
            os.rename(temp, out)
        except OSError:
            os.rename(old / "site", out)
            raise
        shutil.rmtree(old)
    else:
        if out.is_dir():
            out.rmdir()
        os.rename(temp, out)


def build_site(service: Records, out: Path, options: SiteOptions) -> dict[str, Any]:
    """Build the site into *out*; returns a summary (counts, review findings)."""
    out = out.absolute()
    if options.lang_default not in LANGS:
        raise InputError("--lang-default is ar or en, not {value}", value=options.lang_default)
    check_target(out)
    check_tiles(options.tiles)
    estimates = load_estimates(options.estimates) if options.estimates else None
    chosen = chosen_incidents(service, options.include)
    redactor = redactor_for(service)
    findings = review(service, redactor, [*chosen, *linked_record_ids(service, chosen)])
    if findings and not options.accept_flagged:
        raise InputError(
            "the records to publish name protected people or sources in {count} field(s); "
            "see athar publish review, correct the text or pass --accept-flagged to publish "
            "it with pseudonyms in their place",
            count=len(findings),
        )
    incidents = gather(service, redactor, chosen)
    media, unconfirmed = _attach_media(service, incidents, options.media_dir)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    try:
        render_site(temp, service, incidents, estimates, options, media)
        stamp = {
            "generator": GENERATOR,
            "version": __version__,
            "built": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        _write(temp, MARKER, _dumps(stamp))
        os.chmod(temp, 0o755)  # noqa: S103  # a site is for reading; mkdtemp made it 0700
        _replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return {
        "ok": True,
        "out": str(out),
        "incidents": len(incidents),
        "flagged": len(findings),
        "media": sum(len(i.media) for i in incidents),
        "media_without_copy": sum(i.unpublished_media for i in incidents),
        "unconfirmed": unconfirmed,
        "estimates": estimates is not None,
    }
