"""The custody PDF: its text carries the hashes, its attached proof verifies with
`athar check-proof` in a process that has no vault, and it renders to a page image."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile
from pypdf import PdfReader
from skimage import data as skdata

from athar.errors import InputError
from athar.publish.copy import CopyOptions, public_copy
from athar.publish.custody import write_report
from athar.records.service import Records
from athar.vault.vault import Vault


def need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} not found: install {package}", pytrace=False)
        pytest.skip(f"{tool} not found (Debian: {package})")


@pytest.fixture
def photo(vault: Vault, tmp_path: Path) -> tuple[Vault, str, Path]:
    src = tmp_path / "صورة-الحي-الشرقي.jpg"
    Image.fromarray(skdata.astronaut()).save(src, quality=92)
    item = vault.add([src], note="صورة من الحي الشرقي").results[0].item
    assert item is not None
    public_copy(vault, item.id, tmp_path / "public.jpg", CopyOptions())
    return vault, item.id, src


def test_custody_pdf_holds_hashes_events_and_a_checkable_proof(photo, tmp_path: Path) -> None:
    vault, item_id, src = photo
    out = tmp_path / "report.pdf"
    with Records(vault) as records:
        report = write_report(vault, records, item_id, out)
    # WeasyPrint's import flips a process-wide Pillow switch; it must not stay flipped, or
    # truncated pictures would pass verification later in the same process (the web app)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    item = vault.item(item_id)
    reader = PdfReader(out)
    text = "".join(page.extract_text() for page in reader.pages).replace("\n", "")
    assert item.sha256 in text and item.id in text
    assert report["checkpoint"]["root"] in text
    assert "publish.copy" in text and "item.added" in text
    assert "athar check-proof" in text
    # the attached files, saved and checked by a separate process with no vault
    attached = {name: data[0] for name, data in reader.attachments.items()}
    assert set(attached) == {"proof.json", "checkpoint.json"}
    elsewhere = tmp_path / "investigator"
    elsewhere.mkdir()
    for name, data in attached.items():
        (elsewhere / name).write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATHAR_")}
    env["ATHAR_VAULT"] = str(elsewhere / "no-vault-here")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "athar",
            "check-proof",
            "proof.json",
            "--checkpoint",
            "checkpoint.json",
            "--file",
            str(src),
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # a different file does not pass
    (elsewhere / "other.jpg").write_bytes(src.read_bytes() + b"\0")
    done = subprocess.run(
        [sys.executable, "-m", "athar", "check-proof", "proof.json", "--file", "other.jpg"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0


def test_custody_pdf_renders_with_arabic(photo, tmp_path: Path) -> None:
    need("pdftoppm", "poppler-utils")
    need("pdftotext", "poppler-utils")
    vault, item_id, _ = photo
    out = tmp_path / "report.pdf"
    write_report(vault, None, item_id, out)
    subprocess.run(
        ["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(out), str(tmp_path / "p")],
        check=True,
        timeout=60,
    )
    page = np.asarray(Image.open(tmp_path / "p-1.png").convert("L"))
    assert page.shape[0] > page.shape[1] > 300  # an A4 page, portrait
    assert 0.01 < (page < 128).mean() < 0.4  # text on it, not blank and not black
    text = subprocess.run(
        ["pdftotext", str(out), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "تقرير سلسلة الحيازة" in text  # Arabic survives as real text, in logical order
    assert "الشرقي" in text and "صورة" in text


def test_custody_bad_input(photo, tmp_path: Path) -> None:
    vault, item_id, _ = photo
    before = len(vault.events())
    with pytest.raises(InputError, match=r"ending in \.pdf"):
        write_report(vault, None, item_id, tmp_path / "report.txt")
    (tmp_path / "taken.pdf").write_bytes(b"mine")
    with pytest.raises(InputError, match="already exists"):
        write_report(vault, None, item_id, tmp_path / "taken.pdf")
    with pytest.raises(InputError, match="no item with id"):
        write_report(vault, None, "abcdef1234", tmp_path / "r.pdf")
    assert (tmp_path / "taken.pdf").read_bytes() == b"mine"
    assert not (tmp_path / "r.pdf").exists()
    assert len(vault.events()) == before


def test_cli_custody(cli, photo, tmp_path: Path) -> None:
    _, item_id, _ = photo
    out = tmp_path / "cli.pdf"
    result = cli("publish", "custody", item_id[:12], "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF-")
