"""Where linkage engines spill names: a private folder, in RAM when the machine has
/dev/shm, or where $ATHAR_SCRATCH says; never the current directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from athar.linkage import model


def test_spill_folder_is_private_and_in_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATHAR_SCRATCH", raising=False)
    folder = Path(model._scratch("athar-test-"))
    try:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        if os.path.isdir(model.RAM_SCRATCH) and os.access(model.RAM_SCRATCH, os.W_OK):
            assert folder.parent == Path(model.RAM_SCRATCH)
        assert not folder.is_relative_to(Path.cwd())
    finally:
        folder.rmdir()


def test_scratch_folder_can_be_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATHAR_SCRATCH", str(tmp_path))
    folder = Path(model._scratch("athar-test-"))
    assert folder.parent == tmp_path and stat.S_IMODE(folder.stat().st_mode) == 0o700
