"""The command line as a user meets it: every command, --json, Arabic messages."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from athar.vault.vault import Vault
from conftest import ARABIC_TEXT, PASSPHRASE


def _init(cli) -> None:
    r = cli("init", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ok"] is True


def test_full_flow(cli, sample_files: Path, tmp_path: Path) -> None:
    _init(cli)
    r = cli("add", str(sample_files), "--note", "حي الشهداء")
    assert r.exit_code == 0, r.output
    assert "4 added" in r.output
    testimony = sample_files / "شهادة-٧.txt"
    want = hashlib.sha256(testimony.read_bytes()).hexdigest()
    assert f"sha256:{want}" in r.output

    items = json.loads(cli("ls", "--json").output)
    assert len(items) == 4
    item = next(i for i in items if i["name"] == testimony.name)
    assert item["note"] == "حي الشهداء" and item["sha256"] == want

    shown = json.loads(cli("show", item["id"][:8], "--json").output)
    assert shown["id"] == item["id"]

    out = tmp_path / "out.txt"
    r = cli("get", item["id"][:10], "-o", str(out))
    assert r.exit_code == 0, r.output
    assert out.read_text(encoding="utf-8") == ARABIC_TEXT
    r = cli("get", item["id"][:10], "-o", str(out))
    assert r.exit_code == 2 and "already exists" in r.output

    log = json.loads(cli("log", "--json").output)
    assert [e["kind"] for e in log] == ["vault.created"] + ["item.added"] * 4
    assert [e["dseq"] for e in log] == list(range(5))

    cp = tmp_path / "cp.json"
    r = cli("checkpoint", "-o", str(cp))
    assert r.exit_code == 0 and cp.exists()
    proof = tmp_path / "proof.json"
    r = cli("prove", item["id"][:12], "-o", str(proof), "--checkpoint", str(cp))
    assert r.exit_code == 0, r.output

    r = cli("verify", "--json", "--checkpoint", str(cp))
    report = json.loads(r.output)
    assert r.exit_code == 0 and report["ok"] and report["items"] == 4


def test_check_proof_works_without_vault_or_passphrase(cli, sample_files, tmp_path) -> None:
    _init(cli)
    cli("add", str(sample_files))
    items = json.loads(cli("ls", "--json").output)
    item = next(i for i in items if i["name"] == "clip.bin")
    cp, proof = tmp_path / "cp.json", tmp_path / "proof.json"
    cli("checkpoint", "-o", str(cp))
    cli("prove", item["id"], "-o", str(proof))
    # A proof names the file and its SHA-256: both outputs are private to the user.
    assert (cp.stat().st_mode & 0o777, proof.stat().st_mode & 0o777) == (0o600, 0o600)
    # A fresh process with no vault, no passphrase, in another folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATHAR_")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "athar",
            "check-proof",
            str(proof),
            "--checkpoint",
            str(cp),
            "--file",
            str(sample_files / "clip.bin"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] and report["file_matches"] is True

    # A different file, a forged checkpoint, and an edited proof all fail.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "athar",
            "check-proof",
            str(proof),
            "--checkpoint",
            str(cp),
            "--file",
            str(sample_files / "empty.txt"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 6 and "differs" in run.stdout
    doc = json.loads(proof.read_text())
    doc["path"][0] = "00" * 32
    bad = tmp_path / "bad-proof.json"
    bad.write_text(json.dumps(doc))
    r = cli("check-proof", str(bad), "--checkpoint", str(cp))
    assert r.exit_code == 6 and "Merkle path" in r.output


def test_proof_against_older_checkpoint_needs_matching_size(cli, sample_files, tmp_path) -> None:
    _init(cli)
    cli("add", str(sample_files / "clip.bin"))
    old_cp = tmp_path / "old.json"
    cli("checkpoint", "-o", str(old_cp))
    cli("add", str(sample_files / "empty.txt"))
    item = json.loads(cli("ls", "--json").output)[0]
    latest = tmp_path / "latest.json"
    cli("prove", item["id"], "-o", str(latest))
    r = cli("check-proof", str(latest), "--checkpoint", str(old_cp))
    assert r.exit_code == 6 and "athar prove ID --checkpoint" in r.output
    at_old = tmp_path / "at-old.json"
    assert cli("prove", item["id"], "-o", str(at_old), "--checkpoint", str(old_cp)).exit_code == 0
    assert cli("check-proof", str(at_old), "--checkpoint", str(old_cp)).exit_code == 0


def test_bad_inputs_get_clear_errors(cli, tmp_path) -> None:
    r = cli("ls")
    assert r.exit_code == 1 and "no Athar vault" in r.output
    _init(cli)
    r = cli("init")
    assert r.exit_code == 2 and "not empty" in r.output
    r = cli("show", "zz")
    assert r.exit_code == 2 and "hexadecimal" in r.output
    r = cli("show", "abcdef12")
    assert r.exit_code == 2 and "no item" in r.output
    r = cli("check-proof", str(tmp_path / "nope.json"))
    assert r.exit_code == 2 and "no such file" in r.output
    (tmp_path / "junk.json").write_text("[1, 2")
    r = cli("check-proof", str(tmp_path / "junk.json"))
    assert r.exit_code == 2 and "not a proof file" in r.output
    r = cli("verify", "--checkpoint", str(tmp_path / "junk.json"))
    assert r.exit_code == 2


def test_errors_in_arabic(cli, tmp_path) -> None:
    _init(cli)
    r = cli("--lang", "ar", "show", "zz")
    assert r.exit_code == 2
    assert "خطأ" in r.output and "ست" in r.output  # "error", "six (hex characters)"
    r = cli("ls", env={"ATHAR_PASSPHRASE": "not it", "ATHAR_LANG": "ar"})
    assert r.exit_code == 3 and "كلمة السر" in r.output


def test_wrong_passphrase_json(cli) -> None:
    _init(cli)
    r = cli("ls", "--json", env={"ATHAR_PASSPHRASE": "wrong"})
    assert r.exit_code == 3
    assert json.loads(r.output) == {
        "ok": False,
        "error": "wrong passphrase (nothing was changed)",
        "kind": "WrongPassphrase",
    }


def test_wipe_destroys_keys_fast_and_needs_no_passphrase(cli, sample_files, vault_dir) -> None:
    _init(cli)
    cli("add", str(sample_files))
    r = cli("wipe", "--yes", "--json", env={"ATHAR_PASSPHRASE": ""})
    assert r.exit_code == 0
    assert json.loads(r.output)["seconds"] < 0.5
    assert not (vault_dir / "key").exists()
    r = cli("ls")
    assert r.exit_code == 5 and "wiped" in r.output
    # Ciphertext is still there, unreadable.
    assert any((vault_dir / "blobs").rglob("*"))


def test_wipe_refuses_without_confirmation_when_scripted(cli) -> None:
    _init(cli)
    r = cli("wipe")
    assert r.exit_code != 0


def test_shred_one_item_keeps_the_rest_verifiable(vault: Vault, sample_files: Path) -> None:
    from athar.vault.audit import audit

    vault.add([sample_files])
    target = next(i for i in vault.items() if i.name == "clip.bin")
    vault.shred(target, "witness withdrew consent")
    items = {i.name: i for i in vault.items()}
    assert items["clip.bin"].shredded
    report = audit(vault)
    assert report.ok, report.problems
    assert report.items == 3


def test_demo_command(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "athar", "demo", "--dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout
    # Running it again recreates its own folder; a foreign folder is refused.
    again = subprocess.run(
        [sys.executable, "-m", "athar", "demo", "--dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep")
    refused = subprocess.run(
        [sys.executable, "-m", "athar", "demo", "--dir", str(foreign)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and (foreign / "precious.txt").exists()
    assert PASSPHRASE  # the demo uses its own labelled passphrase, not the tests'


def test_command_table_matches_what_each_module_registers() -> None:
    """The console script imports only the module that owns the named command: the table
    it reads must say exactly what each module adds, and no name may have two owners."""
    import importlib

    import typer

    from athar.cli import commands, core

    core_names = {"init", "add", "ls", "show", "verify", "wipe", "check-proof"}
    assert core_names <= commands.names_of(core.app)
    seen: set[str] = set()
    for module, names in commands.COMMAND_MODULES.items():
        fresh = typer.Typer()
        importlib.import_module(f"athar.cli.{module}").register(fresh)
        assert commands.names_of(fresh) == set(names), module
        assert not seen & set(names), module
        assert not core_names & set(names), module
        seen |= set(names)


def test_command_name_skips_the_global_options() -> None:
    from athar.cli.commands import COMMAND_MODULES, command_name, modules_for

    assert command_name(["--vault", "/tmp/خزنة", "--lang", "ar", "bundle", "export"]) == "bundle"
    assert command_name(["-V", "x", "--store", "postgresql://h/db", "search", "محمد"]) == "search"
    assert command_name(["--help"]) is None
    assert modules_for(["--lang", "ar", "inspect", "صورة.jpg"]) == ["verify_cmds"]
    assert modules_for(["no-such-command"]) == list(COMMAND_MODULES)
    assert modules_for(None) == modules_for(["--help"]) == list(COMMAND_MODULES)


def test_a_bundle_command_does_not_import_the_heavy_libraries(tmp_path: Path) -> None:
    """`athar bundle …` and `athar device id` start without SQLAlchemy, NumPy, PyAV or
    pandas (about a CPU second on this machine; twice per bundle sent)."""
    probe = (
        "import sys\n"
        "sys.argv = ['athar', '--lang', 'ar', 'bundle', '--help']\n"
        "from athar.cli import commands\n"
        "try:\n"
        "    commands.run()\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = [m for m in ('sqlalchemy', 'numpy', 'av', 'pandas', 'PIL') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "export" in out and "import" in out  # the group's own help
    assert out.strip().endswith("HEAVY []"), out
    # and the full help still lists every group
    full = subprocess.run(
        [sys.executable, "-m", "athar", "--help"], capture_output=True, text=True, timeout=120
    )
    assert full.returncode == 0
    for name in ("bundle", "link", "publish", "serve", "inspect", "estimate", "demo"):
        assert name in full.stdout, name
