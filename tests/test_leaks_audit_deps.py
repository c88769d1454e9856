"""Dependency hygiene (issue 10): scripts/audit-deps reads every pin of the lock file,
reports known vulnerabilities, and never calls a package it could not audit clean.
PyPI is not contacted here: its answers are stood in by recorded shapes."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def audit():
    loader = importlib.machinery.SourceFileLoader("audit_deps", str(ROOT / "scripts/audit-deps"))
    spec = importlib.util.spec_from_loader("audit_deps", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_every_pin_of_the_lock_is_read(audit, tmp_path) -> None:
    pins = audit.locked(ROOT / "requirements.lock")
    assert len(pins) > 50 and pins["cryptography"] and pins["pynacl"]
    lock = tmp_path / "r.lock"
    lock.write_text(
        "Foo_Bar==1.2 \\\n    --hash=sha256:00\npsycopg[binary]==3.2.1 ; python_version>'3'\n"
        "# comment==9\n",
        encoding="utf-8",
    )
    assert audit.locked(lock) == {"foo-bar": "1.2", "psycopg": "3.2.1"}


def _project(version: str, vulns: list[dict]) -> dict:
    return {"info": {"version": version}, "vulnerabilities": vulns}


def test_fallback_is_exact_only_for_the_newest_release(audit, monkeypatch) -> None:
    answers = {
        "pillow": _project("11.0", [{"id": "PYSEC-1"}, {"id": "GHSA-x", "withdrawn": "2024"}]),
        "rich": _project("14.0", []),
        "numpy": _project("2.5", [{"id": "PYSEC-2"}]),
    }
    monkeypatch.setattr(audit, "project_json", answers.get)
    assert audit.fallback("pillow", "11.0")["vulns"] == ["PYSEC-1"]
    assert audit.fallback("rich", "14.0") == {
        "version": "14.0",
        "vulns": [],
        "audited": True,
        "by": "pypi project json",
    }
    older = audit.fallback("numpy", "2.4")  # a vulnerability of 2.5 says nothing of 2.4
    assert older["audited"] is False and older["vulns"] == []
    assert audit.fallback("missing", "1.0")["by"] == "unreachable"


def test_exit_status(audit, monkeypatch, tmp_path, capsys) -> None:
    lock = tmp_path / "r.lock"
    lock.write_text("pillow==11.0\nrich==13.0\n", encoding="utf-8")
    monkeypatch.setattr(audit, "run_pip_audit", lambda _: {})
    answers = {"pillow": _project("11.0", []), "rich": _project("14.0", [])}
    monkeypatch.setattr(audit, "project_json", answers.get)
    monkeypatch.setattr(sys, "argv", ["audit-deps", "--lock", str(lock)])
    assert audit.main() == 0
    assert "not audited: rich 13.0" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["audit-deps", "--lock", str(lock), "--strict"])
    assert audit.main() == 1
    answers["pillow"] = _project("11.0", [{"id": "PYSEC-2024-9"}])
    monkeypatch.setattr(sys, "argv", ["audit-deps", "--lock", str(lock)])
    assert audit.main() == 1
    assert "VULNERABLE pillow 11.0: PYSEC-2024-9" in capsys.readouterr().out
