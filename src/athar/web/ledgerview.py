"""The audit view's reading of the ledger: who did what, and proofs of single events.

Runs on the vault thread. An event's inclusion proof has the fields of the vault's item
proof (athar.vault.vault.Vault.prove: index, tree_size, entry, path, checkpoint), without
the item, so the same RFC 9162 check applies to any event: record edits as well as files.

Events name the acting account by its pseudonymous id (acct-…, see athar.web.accounts);
the page resolves ids to this team's user names with the map the accounts file gives, so
names show here and nowhere in the ledger. Older events that carry a name show it as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from athar.crypto.identity import b64, fingerprint
from athar.errors import InputError, IntegrityError
from athar.vault import merkle
from athar.vault.vault import Vault

EVENT_PROOF_TYPE = "athar.event-inclusion-proof/1"


@dataclass(frozen=True)
class Entry:
    seq: int
    kind: str
    time: str
    device: str
    user: str
    subject: str


def _subject(body: dict[str, Any], names: Mapping[str, str]) -> str:
    if isinstance(body.get("account"), str):  # an account event: whose account
        return names.get(body["account"], body["account"])
    for key in ("id", "src", "item", "vocabulary", "file", "copy", "original"):
        if isinstance(body.get(key), str):
            return str(body[key])
    if "sha256" in body:
        return str(body.get("name", ""))
    return ""


def recent(
    vault: Vault,
    page: int,
    per_page: int = 50,
    user: str | None = None,
    names: Mapping[str, str] | None = None,
) -> tuple[list[Entry], int]:
    """Events newest first, one page; and the ledger size. *user* filters by account id
    or by name; *names* maps account ids to names."""
    names = names or {}
    size = vault.ledger.size()
    out: list[Entry] = []
    seq = size - 1 - page * per_page
    while seq >= 0 and len(out) < per_page:
        signed = vault.ledger.event_at(seq)
        body = signed.event.body
        raw = str(body.get("user") or "")
        who = names.get(raw, raw)
        if user is None or user in (raw, who):
            out.append(
                Entry(
                    seq=seq,
                    kind=signed.event.kind,
                    time=signed.event.time,
                    device=fingerprint(signed.event.device),
                    user=who,
                    subject=_subject(body, names),
                )
            )
        seq -= 1
    return out, size


def event_proof(vault: Vault, seq: int) -> dict[str, Any]:
    size = vault.ledger.size()
    if not 0 <= seq < size:
        raise InputError("no event number {seq} in this ledger", seq=seq)
    for item in vault.items():
        if item.seq == seq:
            return vault.prove(item, _checkpoint(vault, seq))
    signed_cp = _checkpoint(vault, seq)
    events = vault.events()
    hashes = [e.leaf for e in events[: signed_cp.checkpoint.size]]
    if merkle.root_from_hashes(hashes) != signed_cp.checkpoint.root:
        raise IntegrityError("the checkpoint does not match this ledger")
    signed = events[seq]
    return {
        "type": EVENT_PROOF_TYPE,
        "kind": signed.event.kind,
        "index": seq,
        "tree_size": len(hashes),
        "entry": b64(signed.entry),
        "path": [h.hex() for h in merkle.inclusion_path_from_hashes(hashes, seq)],
        "checkpoint": signed_cp.to_json(),
    }


def _checkpoint(vault: Vault, seq: int) -> Any:
    latest = vault.ledger.latest_checkpoint()
    if latest is None or latest.checkpoint.size <= seq:
        return vault.checkpoint()
    return latest
