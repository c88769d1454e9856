"""`athar demo`: the README's main job — a demo vault with sample files, proved and verified.

Everything it makes is clearly labelled demo data, under one folder it can safely
recreate; it never touches a folder it did not make.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from athar.cli.context import Ctx, run_guarded
from athar.errors import InputError
from athar.records.export import export
from athar.records.service import Records
from athar.vault.audit import audit
from athar.vault.fsutil import atomic_write_text
from athar.vault.proofs import check_proof
from athar.vault.vault import Vault

DEMO_PASSPHRASE = "demo passphrase - not for real evidence"  # noqa: S105 - labelled demo
DEMO_MARKER = "ATHAR-DEMO"


def _fresh_dir(ctx: Ctx, root: Path) -> None:
    if root.exists():
        if not (root / DEMO_MARKER).exists():
            raise ctx.fail(
                InputError("{path} exists and was not made by athar demo", path=str(root))
            )
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / DEMO_MARKER).write_text("Made by `athar demo`; safe to delete.\n")


def demo(
    context: typer.Context,
    folder: Annotated[Path, typer.Option("--dir", help="Folder for the demo (recreated).")] = Path(
        "athar-demo"
    ),
) -> None:
    """Create a demo vault, add sample files, prove one offline, verify everything."""
    ctx: Ctx = context.obj
    _fresh_dir(ctx, folder)
    samples = resources.files("athar") / "samples"
    sample_dir = folder / "samples"
    sample_dir.mkdir()
    for entry in samples.iterdir():
        if entry.is_file():
            (sample_dir / entry.name).write_bytes(entry.read_bytes())
    vault_dir = folder / "vault"
    out = ctx.out
    out.rule(ctx.t("Athar demo — synthetic data"))
    out.print(ctx.t("1. Creating an encrypted vault in {path}", path=str(vault_dir)))
    vault = run_guarded(ctx, Vault.create, vault_dir, DEMO_PASSPHRASE)
    with vault:
        out.print(ctx.t("   device fingerprint {fp}", fp=vault.device_fingerprint))
        out.print(ctx.t("2. Adding the sample files"))
        report = run_guarded(ctx, vault.add, [sample_dir], "demo")
        for r in report.results:
            if r.item:
                out.print(
                    f"   {r.item.short_id}  {r.item.sha256[:16]}…  {r.item.name}", highlight=False
                )
        out.print(ctx.t("3. Signing a checkpoint and proving one item"))
        signed = run_guarded(ctx, vault.checkpoint)
        signed.write(folder / "checkpoint.json")
        item = next(i for i in vault.items() if i.name == "testimony-ar.txt")
        proof = run_guarded(ctx, vault.prove, item, signed)
        (folder / "proof.json").write_text(json.dumps(proof, indent=2, ensure_ascii=False))
        result = check_proof(proof, signed, sample_dir / item.name)
        out.print(
            ctx.t(
                "   proof of {name}: {verdict}",
                name=item.name,
                verdict=ctx.t("valid") if result.ok else ctx.t("INVALID"),
            )
        )
        out.print(ctx.t("4. Describing an incident with two victims and a source"))
        found = run_guarded(ctx, _describe, vault, folder)
        out.print(
            ctx.t("   search for محمد finds {titles}", titles=", ".join(found)), highlight=False
        )
        out.print(ctx.t("   map of incidents: {path}", path=str(folder / "incidents.geojson")))
        out.print(ctx.t("5. Verifying the whole vault"))
        audit_report = run_guarded(ctx, audit, vault)
    for p in audit_report.problems:
        out.print(f"[red]✗[/] {p}", highlight=False)
    ok = audit_report.ok and result.ok
    out.print(
        ctx.t(
            "   {events} events, {items} items, Merkle root {root}",
            events=audit_report.events,
            items=audit_report.items,
            root=audit_report.root[:16] + "…",
        ),
        highlight=False,
    )
    out.print(
        f"[green]✓ {ctx.t('vault verified: all checks passed')}[/]"
        if ok
        else f"[red]✗ {ctx.t('VERIFICATION FAILED')}[/]"
    )
    out.print(ctx.t("Try it yourself:"))
    out.print(
        f"   export ATHAR_VAULT={vault_dir} ATHAR_PASSPHRASE='{DEMO_PASSPHRASE}'",
        highlight=False,
        markup=False,
    )
    exe = _command_name()
    out.print(
        f"   {exe} ls ; {exe} search محمد ; {exe} list incident ; {exe} verify ; {exe} check-proof "
        f"{folder}/proof.json --checkpoint {folder}/checkpoint.json",
        highlight=False,
        markup=False,
    )
    if not ok:
        raise typer.Exit(6)


def _describe(vault: Vault, folder: Path) -> list[str]:
    """Synthetic records: an incident in a besieged town, its victims, a witness."""
    with Records(vault) as records:
        source = records.create(
            "source",
            {
                "type": "witness",
                "name": "شاهد (بيانات تجريبية)",
                "reliability": "B",
                "credibility": "2",
                "protection": "pseudonymise",
            },
        )
        incident = records.create(
            "incident",
            {
                "title.ar": "قصف سوق الحي الشرقي (حادثة تجريبية)",
                "title.en": "Shelling of the eastern market (demo incident)",
                "date": "2017-03-14",
                "place.name_ar": "الحي الشرقي",
                "place.admin_area": "ريف دمشق",
                "place.coordinates": "33.5711,36.4022,500",
                "violations": "استهداف سوق,هجوم عشوائي",
                "weapons": "artillery_shelling",
                "killed.total": "2",
                "grading": "fair",
            },
        )
        for name, sex, age in (("مُحَمَّد أحمد الحلبي", "male", "12"), ("فاطمة علي", "female", "34")):
            person = records.create("person", {"name_ar.full": name, "sex": sex, "age": age})
            records.create("status", {"person": person, "status": "killed", "date": "2017-03-14"})
            records.link(incident, "victim", person)
        records.link(incident, "source", source)
        photo = next(i for i in vault.items() if i.name.endswith(".png"))
        records.link(incident, "media", photo.id)
        with atomic_write_text(folder / "incidents.geojson") as handle:
            export(records, "geojson", handle, "incident")
        return [row["title"] for row in records.find("محمد")]


def _command_name() -> str:
    """How the user can run athar again: plain `athar` if it is on PATH, else its path."""
    argv0 = Path(sys.argv[0])
    if shutil.which("athar") == str(argv0.resolve()) or argv0.name != "athar":
        return "athar"
    return os.path.relpath(argv0)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
