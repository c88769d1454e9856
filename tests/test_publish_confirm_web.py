"""The publisher's confirmation page (issue 9): every public copy shown before it goes
out, decisions signed with the acting account (never its name), roles enforced, Arabic
right to left, bad input answered in the page."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from athar.publish.confirm import PUBLISH_CONFIRMED, PUBLISH_REJECTED, copy_states
from athar.publish.copy import CopyOptions, public_copy
from athar.publish.faces import Box
from athar.vault.vault import Vault
from athar.web.app import create_app
from athar.web.locale import Speaker
from athar.web.state import Settings
from test_web_fixtures import BASE, PASSPHRASE, World, build_world, csrf_of, login

REASON_AR = "يظهر وجه امرأة خلف النافذة"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    world = build_world(tmp_path_factory.mktemp("publish-web"))
    with Vault.open(world.vault_dir, PASSPHRASE) as vault:
        copies = [
            public_copy(vault, world.photo, None, CopyOptions(faces=False, regions=regions))
            for regions in ((Box(0, 0, 30, 30),), (Box(10, 10, 30, 30),), (Box(20, 20, 5, 5),))
        ]
    app = create_app(world.vault_dir, PASSPHRASE, Settings())
    with TestClient(app, base_url=BASE) as client:
        yield {"world": world, "client": client, "copies": [c["event"] for c in copies],
               "shas": [c["sha256"] for c in copies]}  # fmt: skip


def as_role(env: dict[str, Any], role: str) -> TestClient:
    return login(TestClient(env["client"].app, base_url=BASE), role)


def events(env: dict[str, Any]) -> list[Any]:
    state = env["client"].app.state.athar
    return list(state.worker.call(state.vault.events))


def test_publisher_sees_each_copy_as_it_will_be_published(env: dict[str, Any]) -> None:
    publisher = as_role(env, "publisher")
    page = publisher.get("/publish")
    assert page.status_code == 200
    for event in env["copies"]:
        assert f'src="/publish/{event}/copy"' in page.text
        assert f"/publish/{event}/confirm" in page.text
    assert "0,0,30,30" in page.text  # what was done: the region hidden by hand
    shown = publisher.get(f"/publish/{env['copies'][0]}/copy")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert shown.headers["cache-control"] == "no-store"
    assert hashlib.sha256(shown.content).hexdigest() == env["shas"][0]
    assert 'href="/publish"' in page.text  # in the navigation


@pytest.mark.parametrize("role", ["viewer", "documenter", "analyst", "verifier"])
def test_other_roles_cannot_see_or_decide(env: dict[str, Any], role: str) -> None:
    client = as_role(env, role)
    csrf = csrf_of(client.get("/account").text)
    before = len(events(env))
    event = env["copies"][0]
    assert client.get("/publish").status_code == 403
    assert client.get(f"/publish/{event}/copy").status_code == 403
    posted = client.post(f"/publish/{event}/confirm", data={"csrf": csrf}, follow_redirects=False)
    assert posted.status_code == 403
    api = client.post(f"/api/publish/copies/{event}/confirm", headers={"x-csrf-token": csrf})
    assert api.status_code == 403
    assert len(events(env)) == before


def test_confirm_and_reject_are_signed_with_the_account_not_the_name(env: dict[str, Any]) -> None:
    publisher = as_role(env, "publisher")
    csrf = csrf_of(publisher.get("/publish").text)
    first, second = env["copies"][0], env["copies"][1]
    done = publisher.post(f"/publish/{first}/confirm", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    refused = publisher.post(
        f"/publish/{second}/reject", data={"csrf": csrf, "reason": " "}, follow_redirects=False
    )
    assert refused.status_code == 400 and "give a reason" in refused.text
    done = publisher.post(
        f"/publish/{second}/reject",
        data={"csrf": csrf, "reason": REASON_AR},
        follow_redirects=False,
    )
    assert done.status_code == 303
    state = env["client"].app.state.athar
    account = state.accounts.account_of("publisher")
    assert account and account.startswith("acct-")
    decided = [e.event for e in events(env) if e.event.kind.startswith("publish.")]
    kinds = {e.body["copy"]: (e.kind, e.body) for e in decided if "copy" in e.body}
    assert kinds[first][0] == PUBLISH_CONFIRMED and kinds[second][0] == PUBLISH_REJECTED
    for _, body in kinds.values():
        assert body["user"] == account and body["role"] == "publisher"
        assert "publisher" not in json.dumps(body).replace('"role": "publisher"', "")
    assert kinds[second][1]["reason"] == REASON_AR
    listed = publisher.get("/publish?status=all").text
    assert REASON_AR in listed and "publisher" in listed  # the name, resolved on this server
    api = publisher.get("/api/publish/copies?status=confirmed").json()
    assert [c["event"] for c in api["copies"]] == [first]
    assert api["copies"][0]["decisions"][0]["user_name"] == "publisher"


def test_remake_with_a_region_and_bad_regions(env: dict[str, Any]) -> None:
    admin = as_role(env, "admin")
    csrf = csrf_of(admin.get("/publish").text)
    third = env["copies"][2]
    bad = {"csrf": csrf, "x": "عشرة", "y": "1", "w": "5", "h": "5"}
    answer = admin.post(f"/publish/{third}/remake", data=bad, follow_redirects=False)
    assert answer.status_code == 400 and "whole number of pixels" in answer.text
    far = {"csrf": csrf, "x": "9000", "y": "1", "w": "5", "h": "5"}
    answer = admin.post(f"/publish/{third}/remake", data=far, follow_redirects=False)
    assert answer.status_code == 400 and "outside the picture" in answer.text
    zero = {"csrf": csrf, "x": "1", "y": "1", "w": "0", "h": "5"}
    assert admin.post(f"/publish/{third}/remake", data=zero).status_code == 400
    before = len(copy_states_of(env))
    good = {"csrf": csrf, "x": "40", "y": "40", "w": "60", "h": "60"}
    answer = admin.post(f"/publish/{third}/remake", data=good, follow_redirects=False)
    assert answer.status_code == 303
    states = copy_states_of(env)
    assert len(states) == before + 1
    old = next(s for s in states if s.event == third)
    assert old.status == "rejected" and "superseded" in old.decisions[0]["reason"]
    assert states[-1].status == "pending" and len(states[-1].regions) == 2


def copy_states_of(env: dict[str, Any]) -> list[Any]:
    state = env["client"].app.state.athar
    return list(state.worker.call(copy_states, state.vault))


def test_arabic_page_is_right_to_left(env: dict[str, Any]) -> None:
    publisher = as_role(env, "publisher")
    csrf = csrf_of(publisher.get("/publish").text)
    publisher.post("/prefs", data={"csrf": csrf, "lang": "ar", "back": "/publish"})
    try:
        page = publisher.get("/publish?status=all")
        assert page.status_code == 200
        assert '<html lang="ar" dir="rtl">' in page.text
        heading = Speaker("ar").t("Public copies awaiting confirmation")  # from the catalog
        assert f"<h1>{heading}</h1>" in page.text
        assert 'class="tag status-pending">' + Speaker("ar").t("pending") in page.text
    finally:
        publisher.post("/prefs", data={"csrf": csrf, "lang": "en", "back": "/"})


def test_world_is_the_shared_one(env: dict[str, Any]) -> None:
    world: World = env["world"]
    assert Path(world.vault_dir).is_dir()
