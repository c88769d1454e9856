"""`athar serve --demo`: the synthetic dataset is built, labelled, and its printed login
works; claims are set against the documented count."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient

from athar.cli.context import Ctx
from athar.cli.demo import DEMO_PASSPHRASE
from athar.cli.web_cmds import _build_demo
from athar.web.app import create_app
from athar.web.demo import DEMO_PASSWORD, DEMO_USER
from athar.web.state import Settings
from test_web_fixtures import BASE, csrf_of


def test_demo_dataset_and_login(tmp_path: Path) -> None:
    ctx = Ctx(vault=tmp_path / "unused", lang="en")
    vault_dir = _build_demo(ctx, tmp_path / "demo")
    app = create_app(vault_dir, DEMO_PASSPHRASE, Settings(demo_note="demo"))
    with TestClient(app, base_url=BASE) as client:
        page = client.get("/login")
        assert "synthetic data only" in page.text  # labelled on every page, even the login
        response = client.post(
            "/login",
            data={"name": DEMO_USER, "password": DEMO_PASSWORD, "csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert response.status_code == 303
        counts = client.get("/api/counts").json()["records"]
        assert counts["incident"] == 5 and counts["person"] >= 10 and counts["claim"] == 2
        found = client.get("/api/records", params={"q": "تجريبية", "type": "incident"}).json()
        assert len(found["records"]) == 5
        incident = client.get("/api/records", params={"q": "سوق", "type": "incident"}).json()
        market = next(r for r in incident["records"] if "قصف سوق" in r["title"])
        detail = client.get(f"/r/{market['id']}").text
        table = re.search(r'<table class="list" id="claims-vs-count">.*?</table>', detail, re.S)
        assert (
            table and "12" in table.group(0) and "3" in table.group(0)
        )  # claimed 12, documented 3
        assert "(بيانات تجريبية)" in detail
        csrf = {"x-csrf-token": csrf_of(client.get("/account").text)}
        late_entry = {"fields": {"title.ar": "حادثة قديمة أدخلت أخيراً", "date": "2016-06-01"}}
        assert (
            client.post("/api/records/incident", json=late_entry, headers=csrf).status_code == 201
        )
        timeline = client.get("/timeline").text
        titles = ("اعتقالات", "مستشفى", "برميل", "الفرن", "قصف سوق", "حادثة قديمة")
        order = [timeline.index(t) for t in titles]
        assert order == sorted(order)  # latest date first, not order of entry
    # a folder the demo did not make is never deleted
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("مهم")
    with pytest.raises(typer.Exit):
        _build_demo(ctx, other)
    assert (other / "keep.txt").read_text() == "مهم"
