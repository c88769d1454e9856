"""C2PA manifests (Content Credentials): who signed a file, with what, and whether it holds.

Reading and validation are c2pa-python's (the C2PA reference implementation, c2pa-rs);
this module only decides what a verifier is told. The verdict is one of three words:

- ``valid``: the manifest's signature, its assertions and the hash binding it to these
  bytes all check out, *and* the signing certificate chains to a trust anchor the user
  configured;
- ``invalid``: anything else that carries a manifest — the picture changed after
  signing, the manifest was edited, the certificate chains to no configured anchor (the
  signature may be intact: ``signature_intact`` says so, since an unknown signer is not
  the same finding as a forged file), or the manifest cannot even be parsed;
- ``none``: no manifest (most files; stripping one is trivial, so this proves nothing).

Offline by design: remote manifests are not fetched, OCSP is not asked, no trust list is
downloaded. Trust anchors are PEM root certificates the user supplies (the C2PA trust
list, a newsroom's own CA); without them no signer is trusted. Nothing here raises for
hostile content: a file is data from anyone.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from athar.errors import InputError

MAX_ASSERTION_CHARS = 4000  # one assertion's JSON kept in the record; more is clipped
MAX_ASSERTIONS = 50
MAX_INGREDIENTS = 20
MAX_REASONS = 30
# The label of the JUMBF superbox that holds a manifest store; a file that cannot be
# parsed and does not contain it never carried a manifest.
_C2PA_LABEL = b"c2pa"
_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
    "HEIF": "image/heif",
}


@dataclass
class Provenance:
    """What a file's C2PA manifest store says, and the verdict on it."""

    verdict: str  # valid | invalid | none
    state: str | None = None  # c2pa's own word: Invalid, Valid (untrusted), Trusted
    signature_intact: bool = False
    trusted: bool = False
    signer: dict[str, Any] = field(default_factory=dict)
    claim_generator: list[str] = field(default_factory=list)
    title: str | None = None
    manifests: int = 0
    assertions: list[dict[str, Any]] = field(default_factory=list)
    ingredients: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[dict[str, str]] = field(default_factory=list)  # failure codes, as given
    error: str | None = None  # the library's message when the store cannot be read

    def to_json(self) -> dict[str, Any]:
        if self.verdict == "none":
            return {"verdict": "none"}
        return {
            "verdict": self.verdict,
            "state": self.state,
            "signature_intact": self.signature_intact,
            "trusted": self.trusted,
            "signer": self.signer,
            "claim_generator": self.claim_generator,
            "title": self.title,
            "manifests": self.manifests,
            "assertions": self.assertions,
            "ingredients": self.ingredients,
            "reasons": self.reasons,
            "error": self.error,
        }


@cache
def _status_texts() -> dict[str, dict[str, str]]:
    raw = json.loads(files("athar.verify.data").joinpath("c2pa_status.json").read_text("utf-8"))
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def explain(reason: dict[str, str], lang: str) -> str:
    """A failure code in the verifier's language. The codes are the C2PA specification's
    own, so they are explained from a table; an unknown code keeps the library's English
    explanation rather than being hidden."""
    text = _status_texts().get(reason.get("code", ""), {}).get(lang)
    return text or reason.get("explanation") or reason.get("code", "")


def load_anchors(path: Path) -> str:
    """The PEM root certificates in a file, checked to be certificates (a typo'd path or a
    private key pasted by mistake must fail loudly, not silently trust nothing)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            "cannot read {path}: {reason}", path=str(path), reason=exc.strerror or str(exc)
        ) from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise InputError("{path} holds no PEM certificate", path=str(path)) from None
    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certs)


def _settings(anchors: str | None) -> c2pa.Settings:
    config: dict[str, Any] = {
        "version": 1,
        "verify": {
            "verify_after_reading": True,
            "verify_trust": True,
            "remote_manifest_fetch": False,
            "ocsp_fetch": False,
        },
    }
    if anchors:
        config["trust"] = {"trust_anchors": anchors}
    return c2pa.Settings.from_dict(config)


def read(data: bytes, fmt: str | None = None, anchors: str | None = None) -> Provenance:
    """The C2PA verdict on a file's content; never raises for bad content.

    ``fmt`` is the picture format Pillow named (JPEG, PNG…) when known; otherwise the
    library detects the type from the bytes."""
    mime = _MIME.get(fmt or "")
    try:
        context = c2pa.Context(_settings(anchors))
        with io.BytesIO(data) as stream:
            if mime is not None:
                reader = c2pa.Reader(mime, stream, context=context)
            else:
                reader = c2pa.Reader(stream, context=context)
            with reader:
                store = json.loads(reader.json())
                certificates = _certificates(reader)
    except c2pa.C2paError.ManifestNotFound:
        return Provenance("none")
    except c2pa.C2paError.NotSupported:
        return Provenance("none")  # a format that cannot carry a manifest
    except (c2pa.C2paError, ValueError, TypeError, OSError) as exc:
        if _C2PA_LABEL not in data:
            return Provenance("none")  # a damaged file that never carried a manifest
        return Provenance("invalid", error=_clip(str(exc), 500))
    return _judge(store, certificates)


def _certificates(reader: c2pa.Reader) -> dict[str, dict[str, Any]]:
    """Subject and issuer of each manifest's signing certificate (crJSON carries the
    whole names; the plain report only a common name and an organisation)."""
    try:
        cr = json.loads(reader.crjson())
    except (c2pa.C2paError, ValueError):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for m in cr.get("manifests") or []:
        if not isinstance(m, dict):
            continue
        info = (m.get("signature") or {}).get("certificateInfo")
        if isinstance(info, dict) and isinstance(m.get("label"), str):
            out[m["label"]] = info
    return out


def _judge(store: dict[str, Any], certificates: dict[str, dict[str, Any]]) -> Provenance:
    manifests = _dict(store.get("manifests"))
    label = store.get("active_manifest")
    active = manifests.get(label) if isinstance(label, str) else None
    state = store.get("validation_state")
    out = Provenance("invalid", state=str(state) if state else None, manifests=len(manifests))
    out.reasons = _reasons(store)
    out.trusted = state == "Trusted"
    out.signature_intact = state in ("Valid", "Trusted")
    if not isinstance(active, dict):
        out.reasons.append({"code": "manifest.missing", "explanation": "no active manifest"})
        return out
    out.signer = _signer(active, certificates.get(str(label), {}))
    out.claim_generator = _generators(active)
    out.title = _clip(str(active["title"]), 500) if active.get("title") else None
    out.assertions = [_assertion(a) for a in (active.get("assertions") or [])[:MAX_ASSERTIONS]]
    out.ingredients = [_ingredient(i) for i in (active.get("ingredients") or [])[:MAX_INGREDIENTS]]
    if out.trusted and not out.reasons:
        out.verdict = "valid"
    return out


def _reasons(store: dict[str, Any]) -> list[dict[str, str]]:
    """Failure codes of the active manifest (and, older reports, ``validation_status``)."""
    results = store.get("validation_results")
    failures: list[Any] = []
    if isinstance(results, dict) and isinstance(results.get("activeManifest"), dict):
        failures = list(results["activeManifest"].get("failure") or [])
    elif isinstance(store.get("validation_status"), list):
        failures = list(store["validation_status"])
    out = []
    for f in failures[:MAX_REASONS]:
        if isinstance(f, dict):
            out.append(
                {
                    "code": _clip(str(f.get("code", "")), 200),
                    "explanation": _clip(str(f.get("explanation", "")), 500),
                }
            )
    return out


def _signer(active: dict[str, Any], cert: dict[str, Any]) -> dict[str, Any]:
    info = _dict(active.get("signature_info"))
    out: dict[str, Any] = {}
    if isinstance(cert.get("subject"), dict):
        out["subject"] = _dn(cert["subject"])
    elif info.get("common_name"):
        out["subject"] = f"CN={info['common_name']}"
    if isinstance(cert.get("issuer"), dict):
        out["issuer"] = _dn(cert["issuer"])
    elif info.get("issuer"):
        out["issuer"] = str(info["issuer"])
    for key in ("common_name", "alg", "cert_serial_number", "time"):
        if info.get(key) is not None:
            out[key] = _clip(str(info[key]), 200)
    validity = cert.get("validity")
    if isinstance(validity, dict):
        out["not_before"] = str(validity.get("notBefore", ""))
        out["not_after"] = str(validity.get("notAfter", ""))
    return out


def _dn(name: dict[str, Any]) -> str:
    return _clip(", ".join(f"{k}={v}" for k, v in name.items()), 500)


def _generators(active: dict[str, Any]) -> list[str]:
    infos = active.get("claim_generator_info")
    out = []
    if isinstance(infos, list):
        for info in infos[:10]:
            if isinstance(info, dict) and info.get("name"):
                version = info.get("version")
                out.append(
                    _clip(f"{info['name']} {version}" if version else str(info["name"]), 200)
                )
    if not out and active.get("claim_generator"):
        out.append(_clip(str(active["claim_generator"]), 200))
    return out


def _assertion(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {"label": "?"}
    data = raw.get("data")
    text = json.dumps(data, ensure_ascii=False, default=str)
    out: dict[str, Any] = {"label": _clip(str(raw.get("label", "?")), 200)}
    if len(text) > MAX_ASSERTION_CHARS:
        out["data"] = _clip(text, MAX_ASSERTION_CHARS)
        out["clipped"] = True
    else:
        out["data"] = data
    return out


def _ingredient(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    for key in ("title", "format", "relationship", "active_manifest"):
        if raw.get(key) is not None:
            out[key] = _clip(str(raw[key]), 300)
    results = raw.get("validation_results")
    if isinstance(results, dict) and isinstance(results.get("activeManifest"), dict):
        fails = results["activeManifest"].get("failure") or []
        out["failures"] = [str(f.get("code")) for f in fails[:10] if isinstance(f, dict)]
    return out


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
