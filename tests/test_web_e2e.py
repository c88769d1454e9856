"""End to end in Debian's Chromium (driven by Playwright, no browser download): log in,
switch to Arabic, create an incident with a victim, upload a photo, find both, read the
audit entry, log out; screenshots of the main pages; axe-core on each of them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_web_fixtures import PASSPHRASE, PASSWORD, World, build_world, live_server

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
PNG = (
    Path(__file__).resolve().parents[1] / "src" / "athar" / "samples" / "street-after-shelling.png"
)


def _need_browser() -> Any:
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is not installed (pip install playwright)"
    if reason is None and not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} not found; install Debian's chromium package"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it so that no test is skipped", pytrace=False)
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, World]]:
    from athar.web.app import create_app
    from athar.web.state import Settings

    world = build_world(tmp_path_factory.mktemp("e2e"))
    with live_server(create_app(world.vault_dir, PASSPHRASE, Settings())) as base:
        yield base, world


def log_in(page: Any, base: str, name: str, landing: str = "/") -> None:
    """Fill the login form the page shows and wait for *landing*."""
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(base + landing)


def _axe(page: Any, name: str, problems: list[str]) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    for violation in results.response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            problems.append(
                f"{name}: {violation['id']} ({violation['impact']}): {violation['help']}"
            )


def test_documenter_journey_in_chromium(server: tuple[str, World], tmp_path: Path) -> None:
    sync_playwright = _need_browser()
    base, _ = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "صورة-من-الموقع.png"
    photo.write_bytes(PNG.read_bytes() + b"e2e")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto(base + "/")
        assert "/login" in page.url
        page.screenshot(path=str(SHOTS / "login.png"))
        _axe(page, "login", problems)
        log_in(page, base, "documenter")
        assert page.locator("html").get_attribute("dir") == "ltr"

        page.click("button[name=lang][value=ar]")
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("dir") == "rtl"
        assert page.locator("html").get_attribute("lang") == "ar"
        page.screenshot(path=str(SHOTS / "dashboard-ar.png"), full_page=True)
        _axe(page, "dashboard", problems)

        page.goto(base + "/records/incident/new")
        page.fill("[name='title.ar']", "قصف مدرسة الأمل")
        page.fill("[name='title.en']", "Shelling of al-Amal school")
        page.fill("[name='date']", "2017-04-02")
        page.fill("[name='place.name_ar']", "حي الشهداء")
        page.fill("[name='place.coordinates']", "33.5662,36.3951,300")
        page.select_option("[name='violations']", ["attack_on_school"])
        page.fill("[name='killed.total']", "1")
        _axe(page, "incident form", problems)
        page.screenshot(path=str(SHOTS / "incident-form-ar.png"), full_page=True)
        page.click("#save")
        page.wait_for_url(lambda url: "/r/inc-" in url)
        incident = page.url.rsplit("/", 1)[1]

        page.fill("#v-name", "مريم خالد النجار")
        page.fill("#v-latin", "Maryam Khalid al-Najjar")
        page.select_option("#v-sex", "female")
        page.fill("#v-age", "9")
        page.select_option("#v-status", "killed")
        page.click("#add-victim")
        page.wait_for_load_state()
        assert "مريم خالد النجار" in page.content()

        page.goto(base + "/media/upload")
        page.set_input_files("#files", str(photo))
        page.click("#upload-go")
        page.wait_for_selector("#upload-list li[data-item]", timeout=30000)
        item = page.locator("#upload-list li").first.get_attribute("data-item")
        assert item
        page.screenshot(path=str(SHOTS / "upload-ar.png"), full_page=True)
        _axe(page, "upload", problems)
        page.goto(f"{base}/media/{item}")
        page.fill("#rec", incident)
        page.click("form.card button[type=submit]")
        page.wait_for_url(f"{base}/r/{incident}")
        assert "صورة-من-الموقع.png" in page.content()
        page.screenshot(path=str(SHOTS / "incident-ar.png"), full_page=True)
        _axe(page, "incident", problems)

        page.goto(base + "/search?q=" + "مدرسه")  # ة typed as ه: the Arabic folding finds it
        assert page.locator("#found-records a", has_text="قصف مدرسة الأمل").count() == 1
        page.goto(base + "/search?q=" + "مريم النجار")
        assert page.locator("#found-records a", has_text="مريم خالد النجار").count() == 1
        page.goto(base + "/search?q=" + "صورة-من-الموقع")
        assert page.locator("#found-files a", has_text="صورة-من-الموقع.png").count() == 1
        page.screenshot(path=str(SHOTS / "search-ar.png"), full_page=True)
        _axe(page, "search", problems)

        page.goto(base + "/records/person")
        page.screenshot(path=str(SHOTS / "persons-ar.png"), full_page=True)
        _axe(page, "persons", problems)
        page.goto(base + "/map")
        page.wait_for_selector(".leaflet-marker-icon", timeout=15000)
        assert page.locator(".leaflet-marker-icon").count() >= 2  # both incidents placed
        page.wait_for_selector(".leaflet-tooltip.place", timeout=15000)  # towns, in Arabic
        assert page.locator(".leaflet-tooltip.place", has_text="حمص").count() == 1
        page.screenshot(path=str(SHOTS / "map-ar.png"))

        # The documenter may not read the audit log; an admin can, and finds the entry.
        assert page.goto(base + "/audit").status == 403
        page.click("#logout")
        page.wait_for_url(lambda url: "/login" in url)
        page.fill("#name", "admin")
        page.fill("#password", PASSWORD)
        page.click("#login")
        page.wait_for_url(base + "/")
        page.goto(base + "/audit?who=documenter")
        rows = page.locator("#audit tbody tr")
        assert rows.count() >= 5
        assert page.locator("#audit a", has_text=incident).count() >= 1
        page.screenshot(path=str(SHOTS / "audit.png"), full_page=True)
        _axe(page, "audit", problems)
        with page.expect_download() as download:
            page.locator("#audit a[download]").first.click()
        assert download.value.suggested_filename.startswith("athar-proof-")

        page.click("#logout")
        page.wait_for_url(lambda url: "/login" in url)
        page.goto(base + "/records/incident")
        assert "/login" in page.url
        browser.close()
    assert problems == []
