"""The report site in Debian's Chromium (Playwright, no browser download), opened from
file:// as a reader who was handed the folder would: every request that is not a file
inside the site fails the test. Switch languages, open an incident with its public
photo, the map and the chart; Arabic pages are right-to-left; screenshots for the README;
axe-core finds no serious accessibility problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_publish_site_scan import build_demo_site
from test_web_e2e import ARGS, CHROMIUM, SHOTS, _axe, _need_browser


def test_site_offline_in_chromium(tmp_path: Path) -> None:
    sync_playwright = _need_browser()
    site = build_demo_site(tmp_path)
    root = site.out.resolve()
    SHOTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    errors: list[str] = []
    problems: list[str] = []
    requested: set[str] = set()

    def audit(page: Any, name: str) -> None:
        _axe(page, name, problems)

    def console(message: Any) -> None:
        # axe-core preloads stylesheets by XHR, which Chromium refuses on file://; the site
        # itself makes no XHR (a failed page resource is caught by `failed` below)
        text = message.text
        if message.type == "error" and "XMLHttpRequest" not in text and "ERR_FAILED" not in text:
            errors.append(text)

    def failed(request: Any) -> None:
        if request.resource_type != "xhr" and not request.url.startswith("data:"):
            errors.append(f"{request.url}: {request.failure}")

    def guard(route: Any) -> None:
        url = route.request.url
        requested.add(url)
        if url.startswith(root.as_uri() + "/"):
            route.continue_()
        else:  # anything else — another folder, a CDN, a tile server — is a leak
            outside.append(url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1000, "height": 800}, locale="ar")
        context.route("**/*", guard)
        page = context.new_page()
        page.set_default_timeout(15000)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", console)
        page.on("requestfailed", failed)

        page.goto((root / "index.html").as_uri())  # forwards to the default language, Arabic
        page.wait_for_url("**/ar/index.html")
        html = page.locator("html")
        assert html.get_attribute("dir") == "rtl" and html.get_attribute("lang") == "ar"
        assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        chart = page.locator("svg.chart")
        assert chart.is_visible() and page.locator("svg.chart rect.high").count() >= 2
        assert chart.bounding_box()["width"] > 200
        assert "(بيانات تجريبية)" in page.content()
        page.screenshot(path=str(SHOTS / "site-overview-ar.png"), full_page=True)
        audit(page, "overview (ar)")

        page.click("li.lang a")  # to English, the same page
        page.wait_for_url("**/en/index.html")
        assert html.get_attribute("dir") == "ltr" and html.get_attribute("lang") == "en"
        assert page.evaluate("getComputedStyle(document.body).direction") == "ltr"
        assert "(demo data)" in page.content()
        page.locator("svg.chart").screenshot(path=str(SHOTS / "site-chart-en.png"))
        page.click("li.lang a")  # and back
        page.wait_for_url("**/ar/index.html")

        page.click("ul.incidents a:has-text('قرب الفرن')")  # the incident with the photo
        page.wait_for_url("**/ar/incident-*.html")
        assert html.get_attribute("dir") == "rtl"
        assert "شخص " in page.content() and "مصدر " in page.content()  # pseudonyms
        photo = page.locator(".media img").first
        photo.scroll_into_view_if_needed()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.media img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        assert page.locator(".media img").count() == 1
        page.screenshot(path=str(SHOTS / "site-incident-ar.png"), full_page=True)
        audit(page, "incident (ar)")
        incident_page = page.url.rsplit("/", 1)[1]
        page.click("li.lang a")
        page.wait_for_url(f"**/en/{incident_page}")
        assert "Airstrike near the bakery" in page.content()

        page.click("a[href='map.html']")
        page.wait_for_url("**/en/map.html")
        page.wait_for_selector("#map path.leaflet-interactive")
        assert page.locator("#map path.leaflet-interactive").count() == 4  # the published four
        page.locator("#map path.leaflet-interactive").first.click(force=True)
        popup = page.locator(".leaflet-popup-content a")
        popup.wait_for()
        assert popup.get_attribute("href", timeout=5000).startswith("incident-")
        page.click("li.lang a")
        page.wait_for_url("**/ar/map.html")
        assert html.get_attribute("dir") == "rtl"
        page.wait_for_selector("#map path.leaflet-interactive")
        page.screenshot(path=str(SHOTS / "site-map-ar.png"))
        audit(page, "map (ar)")

        for name in ("timeline", "claims", "downloads"):
            page.click(f"a[href='{name}.html']")
            page.wait_for_url(f"**/ar/{name}.html")
            assert html.get_attribute("dir") == "rtl"
        assert "12" in page.goto((root / "ar" / "claims.html").as_uri()).text()
        browser.close()

    assert outside == [], outside
    assert errors == [], errors
    assert problems == [], problems
    assert any(u.endswith("leaflet.js") for u in requested)  # the route saw the real traffic
