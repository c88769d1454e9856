"""Ledger schema: opening an older vault migrates it in place, idempotently."""

from __future__ import annotations

from pathlib import Path

from athar.vault.audit import audit
from athar.vault.ledger import SCHEMA_VERSION
from athar.vault.vault import Vault
from conftest import PASSPHRASE


def test_version_1_vault_is_migrated_on_open(vault: Vault, vault_dir: Path, sample_files) -> None:
    vault.add([sample_files])
    conn = vault.ledger.conn
    conn.execute("DROP INDEX blob_keys_by_seq")
    conn.execute("PRAGMA user_version=1")
    vault.close()
    with Vault.open(vault_dir, PASSPHRASE) as again:
        c = again.ledger.conn
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "blob_keys_by_seq" in names
        assert audit(again).ok
    with Vault.open(vault_dir, PASSPHRASE) as third:  # a second open changes nothing
        assert third.ledger.conn.execute("PRAGMA user_version").fetchone()[0] == 2
