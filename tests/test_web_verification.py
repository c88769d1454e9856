"""The verification queue and an item's verification panel in the web app: the queue
lists every file (unverified ones too) latest change first, the panel shows the
near-copies `athar similar` finds, and the form records a signed verdict as the acting
user through the same service as `athar verdict`. Bad input is refused in the user's
language with nothing written; CSRF and roles are enforced; injection strings are inert."""

from __future__ import annotations

import html
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from PIL import Image

from athar.i18n import translate
from athar.vault.vault import Vault
from athar.verify.service import MediaService
from athar.web.app import create_app
from athar.web.state import Settings
from test_web_fixtures import BASE, PASSPHRASE, World, build_world, csrf_of, login

INJECTION = "<script>alert('x')</script> '; DROP TABLE records; -- {{ 7*7 }}"


class Env:
    def __init__(self, world: World, copy: str, app: TestClient) -> None:
        self.world, self.copy, self.app = world, copy, app
        self.state = app.app.state.athar  # type: ignore[attr-defined]

    def client(self, role: str, lang: str = "en") -> TestClient:
        client = login(TestClient(self.app.app, base_url=BASE), role)
        csrf = csrf_of(client.get("/account").text)
        client.post("/prefs", data={"lang": lang, "digits": "latin", "csrf": csrf, "back": "/"})
        return client

    def ledger_size(self) -> int:
        size: int = self.state.worker.call(self.state.vault.ledger.size)
        return size


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """The shared test world plus a JPEG re-encoding of its photo at twice the size (a
    near-copy; the 160×120 sample is too small to survive halving), both analysed as
    `athar add` does."""
    root = tmp_path_factory.mktemp("webverify")
    world = build_world(root)
    copies = root / "copies"
    copies.mkdir()
    with Image.open(root / "files" / "صورة-الشارع.png") as img:
        big = img.convert("RGB").resize((img.width * 2, img.height * 2))
        buf = io.BytesIO()
        big.save(buf, "JPEG", quality=70)
    (copies / "نسخة-معاد-نشرها.jpg").write_bytes(buf.getvalue())
    with Vault.open(world.vault_dir, PASSPHRASE) as vault:
        vault.add([copies], "منشور على تلغرام")
        service = MediaService(vault)
        service.ingest(vault.items())
        copy = next(i.id for i in vault.items() if i.name.endswith(".jpg"))
    app = create_app(world.vault_dir, PASSPHRASE, Settings())
    with TestClient(app, base_url=BASE) as client:
        yield Env(world, copy, client)


def _form(client: TestClient) -> str:
    return csrf_of(client.get("/account").text)


def test_queue_lists_unverified_files_and_filters(env: Env) -> None:
    client = env.client("viewer", "ar")
    page = client.get("/verification")
    assert page.status_code == 200 and 'dir="rtl"' in page.text
    assert "صورة-الشارع.png" in page.text and "نسخة-معاد-نشرها.jpg" in page.text
    assert page.text.count('data-status="unverified"') == 2
    assert 'action="/media/' not in page.text  # the queue itself has no verdict form
    rows = client.get("/api/verification?status=unverified").json()["items"]
    assert {r["item"] for r in rows} == {env.world.photo, env.copy}
    assert all(r["record"] is None for r in rows)
    # A status given by its Arabic label works; an unknown one is refused in Arabic.
    assert client.get("/verification", params={"status": "غير متحقق منه"}).status_code == 200
    bad = client.get("/verification", params={"status": "مؤكد تماماً"})
    assert bad.status_code == 400 and 'role="alert"' in bad.text
    api = client.get("/api/verification", params={"status": "nonsense"})
    assert api.status_code == 400
    assert "nonsense" in api.json()["error"]


def test_panel_shows_near_copies_with_distance_and_first_seen(env: Env) -> None:
    client = env.client("analyst")
    page = client.get(f"/media/{env.world.photo}")
    assert page.status_code == 200
    assert 'id="verification"' in page.text and 'id="similar"' in page.text
    assert "نسخة-معاد-نشرها.jpg" in page.text
    assert "منشور على تلغرام" in page.text  # the copy's note, next to its first-seen date
    assert 'id="save-verdict"' not in page.text and "<fieldset disabled>" in page.text
    data = client.get(f"/api/verification/{env.world.photo}").json()
    assert data["status"] == "unverified" and data["record"] is None
    [near] = data["similar"]
    assert near["id"] == env.copy and near["kind"] == "image"
    assert 0 <= near["distance"] <= 40
    item = env.state.worker.call(env.state.item, env.copy)
    assert near["first_seen"] == item.added


def test_verifier_records_a_signed_verdict(env: Env) -> None:
    client = env.client("verifier", "ar")
    csrf = _form(client)
    before = env.ledger_size()
    reasoning = "الظلال توافق الساعة العاشرة صباحاً؛ المئذنة ظاهرة. " + INJECTION
    response = client.post(
        f"/media/{env.world.photo}/verify",
        data={
            "csrf": csrf,
            "status": "verified",
            "check.date": "consistent",
            "check.location": "inconclusive",
            "check.provenance": "not_checked",
            "reasoning": reasoning,
            "corroborating": env.copy[:12],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:500]
    assert env.ledger_size() > before
    data = client.get(f"/api/verification/{env.world.photo}").json()
    record = data["record"]
    assert record["fields"]["status"] == "verified"
    assert record["fields"]["reasoning"] == reasoning
    account = env.state.accounts.account_of("verifier")
    assert account and account.startswith("acct-")
    assert record["fields"]["verifier"] == account  # no team member's name in the ledger
    assert data["corroborating"] == [env.copy]
    history = client.get(f"/api/records/{record['id']}/history").json()["history"]
    assert history and all(h.get("user") == "verifier" for h in history), history
    # The page shows the reasoning inert, and the verdict in Arabic.
    page = client.get(f"/media/{env.world.photo}")
    assert "<script>alert" not in page.text
    assert str(escape(INJECTION)) in page.text
    assert "متحقق منه" in page.text
    # Latest change first, and the filter finds it.
    rows = client.get("/api/verification").json()["items"]
    assert rows[0]["item"] == env.world.photo and rows[0]["status"] == "verified", rows
    assert [r["item"] for r in client.get("/api/verification?status=verified").json()["items"]] == [
        env.world.photo
    ]
    # Sending the same form again changes nothing and writes nothing.
    size = env.ledger_size()
    again = client.post(
        f"/media/{env.world.photo}/verify",
        data={
            "csrf": csrf,
            "status": "verified",
            "check.date": "consistent",
            "check.location": "inconclusive",
            "check.provenance": "not_checked",
            "reasoning": reasoning,
            "verifier": "verifier",
            "corroborating": env.copy,
        },
        follow_redirects=False,
    )
    assert again.status_code == 303, again.text[again.text.find('role="alert"') :][:400]
    assert env.ledger_size() == size


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"status": "مؤكد تماماً"}, "status", None),
        ({"check.date": "maybe"}, "check.date", None),
        (
            {"status": "in_review", "date": "2017-02-30"},
            "date",
            ("{value} is not a real date", {"value": "2017-02-30"}),
        ),
        ({"status": "verified", "corroborating": "ffffffffffff"}, "corroborating", None),
        ({"status": "verified", "corroborating": "ليس-معرفاً"}, "corroborating", None),
        ({"status": "verified", "corroborating": "{self}"}, "corroborating", None),
        ({"reasoning": "ن" * 20_001}, "reasoning", None),
    ],
)
def test_bad_verdicts_are_refused_in_arabic_and_nothing_changes(
    env: Env, values: dict[str, str], field: str, message: tuple[str, dict[str, str]] | None
) -> None:
    client = env.client("admin", "ar")
    csrf = _form(client)
    target = env.copy
    values = {k: v.replace("{self}", target) for k, v in values.items()}
    before = env.ledger_size()
    response = client.post(
        f"/media/{target}/verify", data={"csrf": csrf, **values}, follow_redirects=False
    )
    assert response.status_code == 400, response.text[:300]
    assert 'dir="rtl"' in response.text and 'role="alert"' in response.text
    if field != "_":
        assert f'id="e-{field}"' in response.text, field
        assert 'aria-invalid="true"' in response.text
    if message:
        text = translate(message[0], "ar", **message[1])
        assert text in html.unescape(response.text)
    assert env.ledger_size() == before
    data = client.get(f"/api/verification/{target}").json()
    assert data["record"] is None or data["record"]["fields"]["status"] != "verified"


def test_csrf_and_roles_are_enforced(env: Env) -> None:
    before = env.ledger_size()
    verifier = env.client("verifier")
    no_token = verifier.post(
        f"/media/{env.copy}/verify", data={"status": "false"}, follow_redirects=False
    )
    assert no_token.status_code == 403
    forged = verifier.post(
        f"/media/{env.copy}/verify", data={"status": "false", "csrf": "x"}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert verifier.post(f"/api/verification/{env.copy}", json={"fields": {}}).status_code == 403
    for role in ("documenter", "viewer", "analyst", "publisher"):
        client = env.client(role)
        csrf = _form(client)
        response = client.post(
            f"/media/{env.copy}/verify",
            data={"status": "false", "csrf": csrf},
            follow_redirects=False,
        )
        assert response.status_code == 403, role
    assert env.ledger_size() == before


def test_api_update_with_a_token(env: Env) -> None:
    token = env.state.accounts.new_token("verifier", "script")
    anon = TestClient(env.app.app, base_url=BASE)
    bearer = {"authorization": f"Bearer {token}"}
    response = anon.post(
        f"/api/verification/{env.copy}",
        json={"fields": {"status": "misattributed", "check.date": "inconsistent"}},
        headers=bearer,
    )
    assert response.status_code == 200, response.text
    assert response.json()["changed"] is True
    data = anon.get(f"/api/verification/{env.copy}", headers=bearer).json()
    assert data["record"]["fields"]["status"] == "misattributed"
    before = env.ledger_size()
    for body in (
        {"fields": {"status": "غير موجود"}},
        {"fields": {"colour": "red"}},
        {"fields": {"item": env.world.photo}},
        {"fields": "status=verified"},
        {"fields": {}, "corroborating": "abc"},
        [1, 2],
    ):
        bad = anon.post(f"/api/verification/{env.copy}", json=body, headers=bearer)
        assert bad.status_code == 400, (body, bad.text)
        assert bad.json()["ok"] is False
    assert env.ledger_size() == before
    viewer = env.state.accounts.new_token("viewer", "script")
    denied = anon.post(
        f"/api/verification/{env.copy}",
        json={"fields": {"status": "verified"}},
        headers={"authorization": f"Bearer {viewer}"},
    )
    assert denied.status_code == 403


def test_two_checks_with_the_same_result(env: Env) -> None:
    client = env.client("verifier")
    response = client.post(
        f"/media/{env.copy}/verify",
        data={
            "csrf": _form(client),
            "status": "in_review",  # the form always sends the status select
            "check.date": "consistent",
            "check.content": "consistent",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[-2000:]


def test_file_page_shows_what_the_file_says_about_itself(env: Env) -> None:
    """The metadata and C2PA verdict recorded at ingest are on the file page, in the
    reader's language, without decoding the file again."""
    ar = env.client("verifier", "ar").get(f"/media/{env.copy}")
    assert ar.status_code == 200 and 'id="self-description"' in ar.text
    recorded = env.state.worker.call(
        env.state.media.recorded_description, env.state.worker.call(env.state.item, env.copy)
    )
    assert recorded is not None and recorded["pdq"] in ar.text
    assert "ما يقوله الملف عن نفسه" in ar.text
    assert translate("no manifest", "ar") in ar.text  # a re-encoded copy carries no C2PA
    en = env.client("verifier").get(f"/media/{env.copy}").text
    assert "What the file says about itself" in en and "JPEG" in en
    for key in recorded["metadata"]["summary"]:
        assert html.escape(translate(key, "en")) in en


def test_queue_pages(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from athar.web.routes import verify as verify_routes

    monkeypatch.setattr(verify_routes, "QUEUE_PAGE", 1)
    client = env.client("viewer")
    first, second = client.get("/verification"), client.get("/verification?page=1")
    assert first.text.count("<tr data-status=") == second.text.count("<tr data-status=") == 1
    assert "page=1" in first.text and "page=0" in second.text and "page=2" not in second.text
    assert client.get("/verification?page=x").status_code == 200  # not a number: first page
    api = client.get("/api/verification?offset=1&limit=1").json()
    assert api["total"] == 2 and len(api["items"]) == 1
    whole = client.get("/api/verification").json()["items"]
    assert api["items"][0]["item"] == whole[1]["item"]
    assert client.get("/api/verification?limit=0").status_code == 400
    assert client.get("/api/verification?offset=-1").status_code == 400
