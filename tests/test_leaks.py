"""Leak hygiene (issue 10): run the main flows of the real CLI with a private HOME, TMPDIR
and working folder, then search every file the app could have touched for planted secret
names (UTF-8 and UTF-16), the file's name and content hashes; and check permissions.

One child process runs every command in turn (so the environment is the app's own, not
pytest's), which keeps the test to one interpreter start-up."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import typer

from athar.cli.main import app
from conftest import PASSPHRASE

VICTIM = "رامي عبد الكريم الصاخوري"
WITNESS = "أم خالد الحلبية"
PHONE = "+963-944-765-432"
FILE_NAME = "شهادة-أم-خالد.txt"
CONTENT = f"رأت {WITNESS} الطائرة فوق الصاخور، وكان {VICTIM} عند الفرن.\n" * 20

FLOWS = [
    ["init"],
    ["add", "in/" + FILE_NAME, "--note", f"مصدر: {WITNESS}"],
    ["new", "person", f"name_ar.full={VICTIM}", "status=killed"],
    ["new", "source", "type=witness", f"name={WITNESS}", f"contact={PHONE}"],
    ["import", "in/list.csv", "--type", "person"],
    ["search", "الصاخوري"],
    ["search", WITNESS],
    ["rebuild"],
    ["export", "--format", "csv", "--type", "person", "-o", "out/people.csv"],
    ["checkpoint", "-o", "out/cp.json"],
    ["get", "@first-item", "-o", "out/" + FILE_NAME],
    ["prove", "@first-item", "-o", "out/proof.json"],
    ["verify"],
    ["recovery", "split", "-k", "2", "-n", "2", "--out", "out/shares"],
]

RUNNER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from athar.cli.main import app
    from athar.cli import demo
    from athar.vault.vault import Vault
    demo.register(app)
    codes = []
    for args in json.loads(sys.argv[1]):
        if "@first-item" in args:  # the id of the item added above
            with Vault.open(Path("vault"), os.environ["ATHAR_PASSPHRASE"]) as v:
                first = v.items()[0].id
            args = [first if a == "@first-item" else a for a in args]
        try:
            app(args, standalone_mode=False)
            codes.append(0)
        except SystemExit as exc:
            codes.append(exc.code)
        except Exception as exc:  # a crash is a finding: say which command
            codes.append(repr(exc))
    print(json.dumps(codes))
    """
)


def _needles(content: bytes) -> dict[str, bytes]:
    sha = hashlib.sha256(content).digest()
    out: dict[str, bytes] = {}
    for label, text in (("victim", VICTIM), ("witness", WITNESS), ("file name", FILE_NAME)):
        out[label] = text.encode()
        out[f"{label} utf-16"] = text.encode("utf-16-le")
        out[f"{label} utf-16be"] = text.encode("utf-16-be")
    out |= {
        "phone": PHONE.encode(),
        "listed": "نورا الحلبي".encode(),
        "folded": "الصاخوري".encode(),
        "content": content[:60],
        "sha256": sha,
        "sha256 hex": sha.hex().encode(),
        "sha256 b64": base64.b64encode(sha).rstrip(b"="),
        "md5 hex": hashlib.md5(content).hexdigest().encode(),
        "sha1 hex": hashlib.sha1(content).hexdigest().encode(),
    }
    return out


def _scan(root: Path, needles: dict[str, bytes]) -> list[str]:
    hits = []
    for f in root.rglob("*"):
        names = f.name.encode()
        hits += [f"{label} in the name {f}" for label, n in needles.items() if n in names]
        if f.is_file() and not f.is_symlink():
            blob = f.read_bytes()
            hits += [f"{label} in {f}" for label, n in needles.items() if n in blob]
    return hits


def test_main_flows_leave_no_secret_outside_the_vault_and_none_readable_in_it(tmp_path) -> None:
    home, tmp, work = tmp_path / "home", tmp_path / "tmp", tmp_path / "work"
    for d in (home, tmp, work / "in", work / "out"):
        d.mkdir(parents=True)
    content = CONTENT.encode()
    (work / "in" / FILE_NAME).write_bytes(content)
    (work / "in" / "list.csv").write_text(
        f"name_ar.full,status\n{VICTIM},killed\nنورا الحلبي,detained\n", encoding="utf-8"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "ATHAR_VAULT": "vault",
        "ATHAR_PASSPHRASE": PASSPHRASE,
        "ATHAR_LANG": "ar",
        "PYTHONDONTWRITEBYTECODE": "1",
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(FLOWS)],
        cwd=work,
        env=env,
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    codes = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert codes == [0] * len(FLOWS), list(zip(FLOWS, codes, strict=True))
    assert VICTIM in done.stdout.decode()  # the search did find the planted name

    needles = _needles(content)
    vault = work / "vault"
    assert _scan(vault, needles) == []
    assert _scan(tmp, needles) == [] and _scan(home, needles) == []
    # Nothing at all is left in TMPDIR or HOME by these flows (no caches, no history).
    assert sorted(str(p.relative_to(tmp_path)) for p in [*tmp.rglob("*"), *home.rglob("*")]) == []
    # In the working folder, only what the user put there or asked for.
    made = {p.relative_to(work).parts[0] for p in work.iterdir()}
    assert made == {"in", "out", "vault"}
    assert [p.name for p in (work / "out").rglob(".*")] == []  # no half-written temp file
    assert (work / "out" / FILE_NAME).read_bytes() == content  # get wrote the real thing
    # The control: the scanner finds the needles where they are in plain text.
    assert _scan(work / "in", needles) and _scan(work / "out", needles)
    # Every file in the vault is private to its owner.
    for p in [vault, *vault.rglob("*")]:
        mode = stat.S_IMODE(p.lstat().st_mode)
        want = 0o700 if p.is_dir() else 0o600
        assert mode == want, f"{p.relative_to(work)} has mode {oct(mode)}"
    shares = work / "out" / "shares"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in shares.iterdir())


def test_no_command_takes_a_secret_on_the_command_line() -> None:
    """Passphrases on the command line end up in shell history and the process list."""
    command = typer.main.get_command(app)

    def walk(cmd, path):
        for param in cmd.params:
            names = " ".join(param.opts).lower()
            if "pass" in names or "secret" in names:
                assert getattr(param, "is_flag", False), f"{path} {names} takes a value"
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")
        yield path

    visited = list(walk(command, "athar"))
    assert "athar recovery join" in visited and len(visited) > 20
