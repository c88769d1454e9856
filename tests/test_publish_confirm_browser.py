"""The publisher's confirmation page in Debian's Chromium (issue 9): the public copy is
shown (decrypted by the server on the fly), the page is right to left in Arabic, a
region is hidden by a new copy, a copy is confirmed, another rejected with an Arabic
reason; axe-core finds no serious violation; a screenshot goes to docs/screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from athar.publish.confirm import copy_states
from athar.publish.copy import CopyOptions, public_copy
from athar.vault.vault import Vault
from test_web_e2e import ARGS, CHROMIUM, SHOTS, _axe, _need_browser, log_in
from test_web_fixtures import PASSPHRASE, World, build_world, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, World, list[str]]]:

    from athar.web.app import create_app
    from athar.web.state import Settings

    world = build_world(tmp_path_factory.mktemp("publish-browser"))
    with Vault.open(world.vault_dir, PASSPHRASE) as vault:
        blurred = public_copy(vault, world.photo, None, CopyOptions())
        pixelated = public_copy(
            vault, world.photo, None, CopyOptions(mode="pixelate"), suffix=".png"
        )
        copies = [blurred["event"], pixelated["event"]]
    with live_server(create_app(world.vault_dir, PASSPHRASE, Settings())) as base:
        yield base, world, copies


def test_publisher_confirms_in_chromium(server: tuple[str, World, list[str]]) -> None:
    sync_playwright = _need_browser()
    base, world, (first, second) = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="ar")
        page = context.new_page()
        page.set_default_timeout(20000)
        page.goto(base + "/publish")
        log_in(page, base, "publisher", "/publish")
        if page.locator("html").get_attribute("dir") != "rtl":
            page.click("button[name=lang][value=ar]")
            page.wait_for_load_state()
        assert page.locator("html").get_attribute("dir") == "rtl"
        card = page.locator(f"#copy-{first[:16]}")
        image = card.locator("img")
        image.wait_for()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
        assert image.evaluate("img => img.naturalWidth") > 100
        _axe(page, "publish", problems)
        page.screenshot(path=str(SHOTS / "publish-confirm-ar.png"), full_page=True)

        # a missed face: hide a region, which makes a new copy and retires this one
        card.locator("input[name=x]").fill("10")
        card.locator("input[name=y]").fill("10")
        card.locator("input[name=w]").fill("80")
        card.locator("input[name=h]").fill("60")
        card.locator("button.remake").click()
        page.wait_for_load_state()
        with Vault.open(world.vault_dir, PASSPHRASE) as vault:
            states = {s.event: s for s in copy_states(vault)}
        newest = max(states.values(), key=lambda s: str(s.copy["time"]))
        assert states[first].status == "rejected" and newest.status == "pending"

        new_card = page.locator(f"#copy-{newest.event[:16]}")
        new_card.locator("button.confirm").click()
        page.wait_for_load_state()
        other = page.locator(f"#copy-{second[:16]}")
        other.locator("input[name=reason]").fill("الوجه الثاني ما زال ظاهرًا")
        other.locator("button.reject").click()
        page.wait_for_load_state()
        assert page.locator("#no-copies").count() == 1  # nothing left awaiting a look
        page.goto(base + "/publish?status=all")
        assert "الوجه الثاني ما زال ظاهرًا" in page.content()
        _axe(page, "publish (all)", problems)
        browser.close()
    with Vault.open(world.vault_dir, PASSPHRASE) as vault:
        final = {s.event: s.status for s in copy_states(vault)}
    assert final == {first: "rejected", second: "rejected", newest.event: "confirmed"}
    assert problems == []
    assert Path(SHOTS / "publish-confirm-ar.png").stat().st_size > 10_000
