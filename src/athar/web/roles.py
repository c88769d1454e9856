"""Roles and what each may do, read from data/roles.json."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from athar.errors import InputError


@cache
def _table() -> tuple[tuple[str, ...], dict[str, frozenset[str]]]:
    raw = json.loads((resources.files("athar.web") / "data" / "roles.json").read_text("utf-8"))
    perms = {name: frozenset(roles) for name, roles in raw["permissions"].items()}
    return tuple(raw["roles"]), perms


def roles() -> tuple[str, ...]:
    return _table()[0]


def permissions() -> dict[str, frozenset[str]]:
    return _table()[1]


def allowed(role: str, permission: str) -> bool:
    return role in permissions()[permission]


def check_role(role: str) -> str:
    role = role.strip().lower()
    if role not in roles():
        raise InputError(
            "unknown role {role}; one of: {roles}", role=role, roles=", ".join(roles())
        )
    return role
