"""The report site: bilingual static pages that leak no protected name, make no external
request, hold only published incidents, and are built whole or not at all."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from athar.errors import InputError
from athar.publish.site.build import SiteOptions, build_site
from athar.records.service import Records
from athar.vault.vault import Vault

WITNESS_AR = "محمد أحمد الحلبي"
SECRET_LATIN = "Fatima Ali Hassan"
SECRET_AR = "فاطمة علي حسن"
PSEUDO_AR = "أبو سمير الشامي"
INJECTION = '<script>alert("x")</script><img src=x onerror=alert(1)>'
UNPUBLISHED = "مجزرة غير منشورة Unpublished massacre"
PLANTED = (WITNESS_AR, SECRET_LATIN, SECRET_AR, PSEUDO_AR, "Mohamad al-Halabi", "فاطمه حسن")
URL_ATTR = re.compile(r"""(?:href|src)\s*=\s*["']([^"']*)["']|url\(\s*["']?([^"')]*)""")


class Tags(HTMLParser):
    """Every element and its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs)))


def make_records(records: Records) -> dict[str, str]:
    witness = records.create(
        "source", {"type": "witness", "name": WITNESS_AR, "protection": "pseudonymise"}
    )
    secret = records.create(
        "person",
        {"name_latin.full": SECRET_LATIN, "name_ar.full": SECRET_AR, "protection": "secret"},
    )
    pseudo = records.create(
        "person", {"name_ar.full": PSEUDO_AR, "protection": "pseudonymise", "sex": "male"}
    )
    public = records.create("person", {"name_ar.full": "خالد عمر", "protection": "public"})
    incident = records.create(
        "incident",
        {
            "title.ar": "قصف الفرن في حي الشهداء",
            "title.en": "Shelling of the bakery " + INJECTION,
            "description.en": "Mohamad al-Halabi saw three shells fall near the bakery.",
            "description.ar": "روت فاطمه حسن ما جرى أمام الفرن.",
            "date": "2017-03-14",
            "place.name_ar": "حي الشهداء",
            "place.admin_area": "حلب",
            "place.coordinates": "36.2,37.15",
            "violations": "killing",
            "killed.total": "5-7",
            "killed.children": "2",
            "grading": "fair",
        },
    )
    second = records.create(
        "incident",
        {"title.ar": "غارة على السوق", "date": "2017-04", "killed.total": "3",
         "place.admin_area": "إدلب"},
    )  # fmt: skip
    hidden = records.create("incident", {"title.ar": UNPUBLISHED, "killed.total": "40"})
    claim = records.create(
        "claim",
        {"party": "وزارة الدفاع", "text.en": "No civilians were harmed " + INJECTION,
         "claimed.killed": "0", "incident": incident, "url": "https://example.org/statement"},
    )  # fmt: skip
    for rel, dst in (("source", witness), ("victim", secret), ("victim", pseudo),
                     ("victim", public)):  # fmt: skip
        records.link(incident, rel, dst)
    records.link(hidden, "victim", public)
    return {"incident": incident, "second": second, "hidden": hidden, "claim": claim,
            "witness": witness, "secret": secret, "pseudo": pseudo}  # fmt: skip


@pytest.fixture
def data(vault: Vault) -> dict[str, str]:
    with Records(vault) as records:
        return make_records(records)


def build(vault: Vault, out: Path, ids: dict[str, str], **kw: Any) -> dict[str, Any]:
    options = SiteOptions(include=[ids["incident"], ids["second"]], accept_flagged=True, **kw)
    with Records(vault) as records:
        return build_site(records, out, options)


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_site_is_bilingual_and_holds_only_published_records(
    vault: Vault, data: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "site"
    summary = build(vault, out, data)
    assert summary["incidents"] == 2 and summary["flagged"] == 2
    for lang in ("ar", "en"):
        for page in (
            "index",
            "timeline",
            "map",
            "claims",
            "downloads",
            f"incident-{data['incident']}",
        ):
            assert (out / lang / f"{page}.html").is_file()
    ar = (out / "ar" / "index.html").read_text("utf-8")
    en = (out / "en" / "index.html").read_text("utf-8")
    assert '<html lang="ar" dir="rtl">' in ar and '<html lang="en" dir="ltr">' in en
    assert "قصف الفرن في حي الشهداء" in ar and "حلب" in ar and "إدلب" in ar
    assert "5–7" in ar  # documented figure for Aleppo as min–max
    assert "2017-03" in en and "2017-04" in en
    page = (out / "ar" / f"incident-{data['incident']}.html").read_text("utf-8")
    assert "خالد عمر" in page  # a public victim keeps his name
    assert "شخص " in page and "مصدر " in page  # pseudonyms, in Arabic
    assert "1" in page and "حمايةً" in page  # the secret victim: counted, not named
    everything = b"".join(files(out).values())
    assert UNPUBLISHED.encode() not in everything and data["hidden"].encode() not in everything
    claims = (out / "en" / "claims.html").read_text("utf-8")
    assert "No civilians were harmed" in claims and "https://example.org/statement" in claims


def test_no_protected_value_in_any_output_byte(
    vault: Vault, data: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "site"
    build(vault, out, data)
    protected_ids = (data["witness"], data["secret"], data["pseudo"])
    for name, content in files(out).items():
        for value in (*PLANTED, *protected_ids):
            assert value.encode() not in content, (name, value)
            assert value.encode("unicode_escape") not in content, (name, value)
            assert name.find(value) < 0


def test_refused_while_review_finds_names(
    vault: Vault, data: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "site"
    with Records(vault) as records, pytest.raises(InputError, match="accept-flagged"):
        build_site(records, out, SiteOptions(include=[data["incident"]]))
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "vault"]


def test_injection_is_inert_and_pages_suit_a_strict_csp(
    vault: Vault, data: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "site"
    build(vault, out, data)
    for name, content in files(out).items():
        if not name.endswith(".html"):
            continue
        text = content.decode("utf-8")
        assert "<script>alert" not in text and "<img src=x" not in text, name
        tags = Tags()
        tags.feed(text)
        for tag, attrs in tags.seen:
            assert tag != "style" and "style" not in attrs, name  # no inline styles
            assert not [a for a in attrs if a.startswith("on")], (name, tag)  # no handlers
            assert tag != "script" or attrs.get("src"), name  # no inline scripts
        assert ("img", {"src": "x", "onerror": "alert(1)"}) not in tags.seen
    en = (out / "en" / f"incident-{data['incident']}.html").read_text("utf-8")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in en
    points = (out / "data" / "points.js").read_text("utf-8")
    assert "<script>" not in points  # \\u003c-escaped JSON inside a separate script file
    csv_text = (out / "data" / "incidents.csv").read_text("utf-8-sig")
    assert "Shelling of the bakery" in csv_text


def test_every_link_is_relative_and_resolves(
    vault: Vault, data: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "site"
    build(vault, out, data)
    checked = 0
    for path in sorted(out.rglob("*")):
        if path.suffix not in (".html", ".css", ".js") or path.name == "leaflet.js":
            continue
        text = path.read_text("utf-8")
        for match in URL_ATTR.finditer(text):
            url = (match.group(1) or match.group(2) or "").strip()
            if url.startswith("#"):  # a fragment (Leaflet's old IE VML behaviour)
                continue
            assert not re.match(r"^[a-z][a-z0-9+.-]*:|^//|^/", url, re.I), (path, url)
            target = (path.parent / url.split("#")[0].split("?")[0]).resolve()
            assert target.is_file() and out.resolve() in target.parents, (path, url)
            checked += 1
        user_urls = {"https://example.org/statement"}  # the user's data, shown as text
        for found in re.findall(r"https?://[^\s\"'<>)]+", text):
            assert found in user_urls, (path, found)
    assert checked > 50
    # the vendor file: only the SVG namespace and the attribution prefix the map turns off
    vendor = (out / "static" / "leaflet" / "leaflet.js").read_text("utf-8")
    assert set(re.findall(r"https?://[^\s\"'<>)]+", vendor)) <= {
        "http://www.w3.org/2000/svg", "https://leafletjs.com"}  # fmt: skip
    assert "attributionControl: false" in (out / "static" / "map.js").read_text("utf-8")


def test_builds_are_deterministic_and_replace_a_previous_site(
    vault: Vault, data: dict[str, str], tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    build(vault, a, data)
    build(vault, b, data)
    fa, fb = files(a), files(b)
    assert fa.keys() == fb.keys()
    assert [n for n in fa if fa[n] != fb[n]] in ([], ["build.json"])  # the stamp only
    stamp = json.loads(fa["build.json"])
    assert stamp["generator"] == "athar publish site" and "built" in stamp
    (a / "ar" / "stale.html").write_text("old")
    build(vault, a, data)  # a previous site is replaced whole
    assert not (a / "ar" / "stale.html").exists() and (a / "ar" / "index.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "vault"]


def test_estimates_shown_and_labelled(vault: Vault, data: dict[str, str], tmp_path: Path) -> None:
    est = tmp_path / "estimates.json"
    est.write_text(json.dumps({
        "ok": True, "method": "loglinear", "lists": ["A", "B", "C"], "stratify": "month",
        "observed": 120, "N": 181.4, "ci": [150.2, 240.9],
        "strata": [{"stratum": "2017-03", "observed": 70, "N": 100.0, "ci": [80.0, None]}],
    }))  # fmt: skip
    out = tmp_path / "site"
    build(vault, out, data, estimates=est)
    en = (out / "en" / "index.html").read_text("utf-8")
    ar = (out / "ar" / "index.html").read_text("utf-8")
    assert "Estimated" in en and "Documented" in en and "181" in en and "150 – 241" in en
    assert "no upper bound" in en and "مقدّر" in ar and "موثق" in ar


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"ok": False}), json.dumps([1, 2]),
     json.dumps({"ok": True, "N": 5, "method": "loglinear", "lists": [], "observed": 3,
                 "ci": [9, 2]}),
     json.dumps({"ok": True, "N": "many", "method": "x", "lists": [], "observed": 3,
                 "ci": [1, 2]})],
)  # fmt: skip
def test_bad_estimates_file(
    vault: Vault, data: dict[str, str], tmp_path: Path, content: str
) -> None:
    est = tmp_path / "estimates.json"
    est.write_text(content)
    out = tmp_path / "site"
    with pytest.raises(InputError, match="athar estimate --json"):
        build(vault, out, data, estimates=est)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["estimates.json", "vault"]


def test_bad_output_folder_and_nothing_published(
    vault: Vault, data: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("لا تحذفني")
    with pytest.raises(InputError, match="not empty"):
        build(vault, out, data)
    assert [p.name for p in out.iterdir()] == ["thesis.txt"]
    with Records(vault) as records, pytest.raises(InputError, match="no incident is marked"):
        build_site(records, tmp_path / "new", SiteOptions())
    assert not (tmp_path / "new").exists()
    with pytest.raises(InputError, match="tile URL"):
        build(vault, tmp_path / "t", data, tiles="ftp://x")


def test_cli_site(
    cli: Callable[..., Any], vault: Vault, data: dict[str, str], tmp_path: Path
) -> None:
    vault.close()
    out = tmp_path / "site"
    refused = cli("publish", "site", "--out", str(out), "--include", data["incident"])
    assert refused.exit_code == 2 and "accept-flagged" in refused.output and not out.exists()
    result = cli("publish", "site", "--out", str(out), "--include", data["incident"],
                 "--accept-flagged", "--lang-default", "en", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["incidents"] == 1
    assert "url=en/index.html" in (out / "index.html").read_text("utf-8")
