"""The issue's scan: the report site built from the demo data holds no protected value
(names in every stored spelling and in a variant a documenter typed, contact fields,
protected record ids) and no original's SHA-256, in any encoding a page or a data file
could carry, in any file's bytes or name — including a photo whose file name and EXIF
comment name a protected witness."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import urllib.parse
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from argon2 import PasswordHasher
from PIL import Image
from sqlalchemy import select

from athar.publish.confirm import confirm
from athar.publish.copy import CopyOptions, public_copy
from athar.publish.site.build import SiteOptions, build_site
from athar.records import schema
from athar.records.service import Records
from athar.records.store import records as records_table
from athar.vault.vault import Vault
from athar.web import demo
from athar.web.accounts import Accounts

PASSPHRASE = "كلمة سر الموقع التجريبي — demo site passphrase"
WITNESS_CONTACT = "+963 944 123 456 / shahed.hay@example.org"
MEDIC_CONTACT = "واتساب ٠٩٤٤٦٥٤٣٢١"
EXIF_NOTE = "صورة التقطها {name} من شرفة منزله"
NAME_FIELDS = ("given", "father", "family")


@dataclass
class DemoSite:
    out: Path
    vault_dir: Path
    published: list[str]  # incident ids marked `publish`
    unpublished_titles: list[str]
    protected_names: set[str] = field(default_factory=set)
    private_values: set[str] = field(default_factory=set)
    protected_ids: set[str] = field(default_factory=set)
    originals: dict[str, str] = field(default_factory=dict)  # item name -> sha256
    media: int = 0


def _rows(records: Records, *types: str) -> list[tuple[str, str, dict[str, object]]]:
    query = select(records_table.c.id, records_table.c.type, records_table.c.data).where(
        records_table.c.type.in_(types), records_table.c.deleted.is_(False)
    )
    with records.engine.connect() as conn:
        return [(r.id, r.type, json.loads(r.data)) for r in conn.execute(query)]


def _spellings(data: dict[str, object]) -> list[str]:
    """A person's name as stored, in both scripts: full, three-part and two-part."""
    out: list[str] = []
    for prefix in ("name_ar", "name_latin"):
        parts = [str(data[f"{prefix}.{p}"]) for p in NAME_FIELDS if data.get(f"{prefix}.{p}")]
        full = data.get(f"{prefix}.full")
        if full:
            out.append(str(full))
            words = str(full).split()
            if len(words) >= 3:
                out.append(f"{words[0]} {words[-1]}")
        if len(parts) == 3:
            out += [" ".join(parts), f"{parts[0]} {parts[2]}"]
    return out


def _variant(latin: str) -> str:
    """How a documenter might type the name in a caption: another transliteration."""
    words = latin.split()
    return f"{words[0]} {words[-1].replace('al-', 'el-')}"


def _photo_with_exif(name: str, folder: Path, file_name: str) -> Path:
    """A JPEG whose EXIF comment and file name name the protected witness."""
    sample = resources.files("athar") / "samples" / "street-after-shelling.png"
    image = Image.open(io.BytesIO(sample.read_bytes())).convert("RGB")
    exif = Image.Exif()
    note = EXIF_NOTE.format(name=name)
    exif[0x010E] = note.encode("utf-8")  # ImageDescription, as phones write UTF-8
    exif[0x9C9C] = note.encode("utf-16-le")  # XPComment (Windows)
    exif[0x013B] = name.encode("utf-8")  # Artist
    path = folder / file_name
    image.save(path, "JPEG", quality=90, exif=exif.tobytes())
    assert name.encode("utf-8") in path.read_bytes()  # the original really carries it
    return path


def build_demo_site(tmp: Path) -> DemoSite:
    """The web demo's synthetic records, a few of them protected and marked for
    publication, two public copies, and the site built from them with --media."""
    samples = tmp / "samples"
    samples.mkdir()
    for entry in (resources.files("athar") / "samples").iterdir():
        if entry.is_file():
            (samples / entry.name).write_bytes(entry.read_bytes())
    vault_dir = tmp / "vault"
    copies = tmp / "copies"
    copies.mkdir()
    with Vault.create(vault_dir, PASSPHRASE) as vault, Records(vault) as records:
        accounts = Accounts(
            vault_dir,
            vault.keys.subkey("web/accounts"),
            PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),  # speed, not the subject
        )
        try:
            demo.build(vault, records, accounts, samples)
        finally:
            accounts.close()
        incidents = sorted(
            _rows(records, "incident"), key=lambda r: str(r[2].get("date"))
        )  # market, bakery, barrels, hospital, arrests
        published = [r[0] for r in incidents[:4]]
        site = DemoSite(
            tmp / "site",
            vault_dir,
            published,
            [str(r[2]["title.ar"]) for r in incidents[4:]],
        )
        for ident in published:
            records.update(ident, {"publish": True})

        # Protect two victims of published incidents whose names no one else shares.
        persons = _rows(records, "person")
        counts: dict[str, int] = {}
        for _, _, data in persons:
            for text in set(_spellings(data)):
                counts[text] = counts.get(text, 0) + 1
        victims = {
            link["dst"]
            for ident in published
            for link in records.get(ident).links
            if link["rel"] == "victim"
        }
        unique = [
            (pid, data)
            for pid, _, data in sorted(persons, key=lambda r: _spellings(r[2]))
            if pid in victims and all(counts[t] == 1 for t in _spellings(data))
        ]
        assert len(unique) >= 2, "the demo data changed: too few distinctly named victims"
        (witness_id, witness), (secret_id, secret) = unique[0], unique[1]
        records.update(witness_id, {"protection": "pseudonymise"})
        records.update(secret_id, {"protection": "secret"})
        for text in (*_spellings(witness), *_spellings(secret)):
            site.protected_names.add(text)
        site.protected_ids |= {witness_id, secret_id}

        # Contact details on the demo's protected sources (private fields).
        for sid, _, data in _rows(records, "source"):
            site.protected_ids.add(sid)
            site.protected_names.add(str(data["name"]))
            if data.get("type") == "witness":
                records.update(sid, {"contact": WITNESS_CONTACT})
            elif data.get("type") == "medical":
                records.update(sid, {"contact": MEDIC_CONTACT})

        # A caption naming the witness in another spelling, in both languages.
        latin_variant = _variant(str(witness["name_latin.full"]))
        arabic_variant = f"{witness['name_ar.given']} {witness['name_ar.family']}"
        records.update(
            published[1],
            {
                "description.en": f"{latin_variant} saw the aircraft circle twice.",
                "description.ar": f"روى {arabic_variant} أن الطائرة حلّقت مرتين.",
            },
        )
        site.protected_names |= {latin_variant, arabic_variant}

        # A photo whose file name and EXIF comment name the witness, and the demo photo.
        name_file = str(witness["name_latin.full"]).replace(" ", "_") + ".jpg"
        arabic_full = " ".join(str(witness[f"name_ar.{p}"]) for p in NAME_FIELDS)
        photo = _photo_with_exif(arabic_full, tmp, name_file)
        report = vault.add([photo], "صورة من شاهد")
        item = report.results[0].item
        assert item is not None
        records.link(published[1], "media", item.id)
        demo_photo = next(i for i in vault.items() if i.name.endswith(".png"))
        site.originals = {i.name: i.sha256 for i in vault.items()}  # before the copies
        for item_id, name in ((item.id, "bakery.jpg"), (demo_photo.id, "market.png")):
            made = public_copy(vault, item_id, copies / name, CopyOptions())
            confirm(vault, made["event"])  # a person looked: only then is it published
        site.protected_names.add(name_file.removesuffix(".jpg"))

        for _, rtype, data in _rows(records, *schema.TYPES):
            for path, spec in schema.TYPES[rtype].fields.items():
                if spec.private and data.get(path):
                    site.private_values.add(str(data[path]))
        photo.unlink()
        summary = build_site(
            records,
            site.out,
            SiteOptions(media_dir=copies, accept_flagged=True),
        )
        assert summary["incidents"] == 4 and summary["flagged"] >= 2, summary
        assert summary["media"] == 2 and summary["media_without_copy"] == 0, summary
        site.media = summary["media"]
    shutil.rmtree(copies)
    return site


def _encodings(value: str) -> set[bytes]:
    """Every way a page, a script, a CSV or a JSON file could carry *value*."""
    forms = {
        value.encode("utf-8"),
        json.dumps(value)[1:-1].encode("ascii"),  # \\u escapes (points.js)
        urllib.parse.quote(value).encode("ascii"),
        value.encode("utf-16-le"),
        value.encode("utf-16-be"),
    }
    return {f for f in forms if f}


def _hash_forms(hex_digest: str) -> set[bytes]:
    raw = bytes.fromhex(hex_digest)
    b64 = base64.b64encode(raw)
    url = base64.urlsafe_b64encode(raw)
    return {
        hex_digest.encode(),
        hex_digest[:16].encode(),  # the short form the CLI prints
        b64,
        b64.rstrip(b"="),
        url.rstrip(b"="),
        base64.b32encode(raw).rstrip(b"="),
    }


def test_site_from_demo_data_holds_no_protected_value_or_original_hash(tmp_path: Path) -> None:
    site = build_demo_site(tmp_path)
    files = {
        str(p.relative_to(site.out)): p.read_bytes() for p in sorted(site.out.rglob("*"))
        if p.is_file()
    }  # fmt: skip
    assert len(files) > 30
    names = sorted(site.protected_names)
    assert len(names) >= 10 and len(site.private_values) >= 2 and len(site.originals) >= 6
    # the build has what it should, so that the absence below means something
    everything = b"\n".join(files.values())
    ar_pages = "".join(v.decode("utf-8") for k, v in files.items() if k.startswith("ar/"))
    assert "شخص " in ar_pages and "مصدر " in ar_pages  # pseudonyms in their place
    assert "(بيانات تجريبية)" in ar_pages and "حلّقت مرتين" in ar_pages
    assert len([k for k in files if k.startswith("media/")]) == site.media == 2
    for title in site.unpublished_titles:
        assert title.encode() not in everything
    values: list[tuple[str, set[bytes]]] = [
        *((v, _encodings(v)) for v in (*names, *site.private_values, *site.protected_ids)),
        *((f"sha256 of {n}", _hash_forms(h)) for n, h in site.originals.items()),
    ]
    leaks = []
    for name, content in files.items():
        folded = content.lower()
        for label, forms in values:
            for form in forms:
                if form in content or form.lower() in folded:
                    leaks.append((name, label, form[:40]))
            if label in name:
                leaks.append((name, label, b"in the file name"))
    assert leaks == []
    # the public copies differ from the originals, and the photo lost its EXIF note
    media = [v for k, v in files.items() if k.startswith("media/")]
    assert not {hashlib.sha256(m).hexdigest() for m in media} & set(site.originals.values())
    assert all(b"Exif" not in m[:4096] for m in media)
