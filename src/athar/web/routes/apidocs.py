"""Readable API documentation at /api/docs, rendered on the server from the app's own
OpenAPI schema (the same one at /api/openapi.json and the one the security scan runs
against), so the docs cannot drift from the routes. Swagger UI and Redoc would need a
CDN or inline scripts, which the Content-Security-Policy forbids; a page of plain HTML
also reads well over a slow link and on a phone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.requests import Request

from athar.web.auth import authorize
from athar.web.render import render

router = APIRouter(include_in_schema=False)
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Param:
    name: str
    where: str
    required: bool
    type: str


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    description: str
    params: list[Param] = field(default_factory=list)
    body: list[Param] = field(default_factory=list)
    responses: list[tuple[str, str]] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        slug = "".join(c if c.isalnum() else "-" for c in self.path.strip("/"))
        return f"{self.method}-{slug}"


def _type(schema: dict[str, Any], spec: dict[str, Any]) -> str:
    schema = _resolve(schema, spec)
    if "anyOf" in schema:
        return " | ".join(_type(s, spec) for s in schema["anyOf"])
    kind = str(schema.get("type", "object" if "properties" in schema else "any"))
    if kind == "array":
        return f"array of {_type(schema.get('items', {}), spec)}"
    return kind


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        found = spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
        return found if isinstance(found, dict) else {}
    return schema


def _body(op: dict[str, Any], spec: dict[str, Any]) -> list[Param]:
    content = op.get("requestBody", {}).get("content", {})
    schema = _resolve(content.get("application/json", {}).get("schema", {}), spec)
    required = set(schema.get("required", []))
    return [
        Param(name, "body", name in required, _type(sub, spec))
        for name, sub in schema.get("properties", {}).items()
    ]


def operations(spec: dict[str, Any]) -> list[Operation]:
    """Every operation of the schema, in path order."""
    out = []
    for path, item in sorted(spec.get("paths", {}).items()):
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [
                Param(p["name"], p["in"], bool(p.get("required")), _type(p.get("schema", {}), spec))
                for p in op.get("parameters", [])
            ]
            responses = [
                (str(code), str(r.get("description", ""))) for code, r in op["responses"].items()
            ]
            description = str(op.get("description", "")).strip()
            summary = str(op.get("summary", ""))
            out.append(
                Operation(
                    method.upper(), path, summary, description, params, _body(op, spec), responses
                )
            )
    return out


def groups(ops: list[Operation]) -> list[tuple[str, list[Operation]]]:
    """Operations by the path's first segment after /api (records, items, audit, …);
    the few outside /api (a file's raw bytes under /media) by their own first segment."""
    out: dict[str, list[Operation]] = {}
    for op in ops:
        parts = op.path.strip("/").split("/")
        name = parts[1] if parts[0] == "api" and len(parts) > 1 else parts[0]
        out.setdefault(name, []).append(op)
    return sorted(out.items())


@router.get("/api/docs")
async def api_docs(request: Request) -> Response:
    principal = authorize(request, "read")
    spec = request.app.openapi()
    ops = operations(spec)
    return render(
        request,
        "apidocs.html",
        principal,
        {"groups": groups(ops), "count": len(ops), "version": spec.get("openapi", "")},
    )
