"""Everything the running server holds: the unlocked vault and records service (on their
own thread), accounts, sessions and uploads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from athar.records.service import Records
from athar.vault.items import Item, find_item, fold_item_event
from athar.vault.vault import Vault
from athar.verify.service import MediaService
from athar.web.accounts import Accounts, worker_journal
from athar.web.sessions import PendingForms, RateLimit, Sessions
from athar.web.uploads import Uploads
from athar.web.worker import Worker


@dataclass
class Settings:
    secure_cookies: bool = True
    session_lifetime: float = 8 * 3600
    session_idle: float = 30 * 60
    login_attempts: int = 5
    login_window: float = 300.0
    tile_url: str | None = None  # e.g. http://tiles.local/{z}/{x}/{y}.png; None: offline basemap
    demo_note: str | None = None  # shown on every page when serving the demo dataset
    store_url: str | None = None
    extra_img_src: tuple[str, ...] = field(default_factory=tuple)


class State:
    def __init__(self, vault_dir: Path, passphrase: str, settings: Settings) -> None:
        self.settings = settings
        self.worker = Worker()
        self.vault: Vault = self.worker.call(Vault.open, vault_dir, passphrase)
        self.records: Records = self.worker.call(Records, self.vault, settings.store_url)
        self.accounts = Accounts(
            vault_dir,
            self.vault.keys.subkey("web/accounts"),
            journal=worker_journal(self.vault, self.worker),
        )
        self.sessions = Sessions(settings.session_lifetime, settings.session_idle)
        self.limits = RateLimit(settings.login_attempts, settings.login_window)
        self.pending = PendingForms()
        self.uploads = Uploads(self.vault)
        # one per server: its index follows the ledger incrementally, not rebuilt per page
        self.media = MediaService(self.vault)
        self._items: dict[str, Item] = {}
        self._items_seen = -1  # the last ledger position folded into _items
        self._counts: dict[str, int] = {}
        self._counts_seq = -2
        # Read the ledger's files and the counts once now (seconds on a large store), not
        # on the first page someone asks for.
        self.worker.call(self.items)
        self.worker.call(self.counts)

    def items(self) -> list[Item]:
        """The vault's files, kept up to date incrementally (call on the vault thread):
        Vault.items() decrypts the whole ledger, too slow for every page of a large store."""
        for batch in self.vault.ledger.events_after(self._items_seen):
            for seq, signed in batch:
                fold_item_event(self._items, seq, signed)
            self._items_seen = batch[-1][0]
        return list(self._items.values())

    def counts(self) -> dict[str, int]:
        """Records per type, counted again only after the projection moved on (counting
        a large store takes a full scan: a quarter of a second at 200,000 records)."""
        seq = self.records.projection.applied_seq()
        if seq != self._counts_seq:
            self._counts = self.records.counts()
            self._counts_seq = seq
        return dict(self._counts)

    def item(self, ident: str) -> Item:
        """One file by id or unique prefix (as Vault.item, from the cache)."""
        return find_item(self.items(), ident)

    def close(self) -> None:
        self.uploads.close()
        self.accounts.close()
        self.worker.call(self.records.close)
        self.worker.call(self.vault.close)
        self.worker.shutdown()
