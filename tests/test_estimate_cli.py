"""`athar estimate` as a user meets it: text, --json with the issue's keys, plots, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from athar.cli import core as cli_core
from athar.cli import estimate_cmds

DATA = Path(__file__).parent / "data" / "estimate"
STRATA = DATA / "syria_strata.csv"
CLUSTERS = DATA / "clusters_syria.csv"
MODEL_KEYS = {
    "interactions",
    "N",
    "unobserved",
    "se",
    "ci",
    "deviance",
    "df",
    "aic",
    "bic",
    "weight",
}


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """The real root callback (language, --vault) with only this command on it, so the
    tests do not depend on the command table registering it."""
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.callback()(cli_core.main)
    estimate_cmds.register(app)

    @app.command("version")
    def _version() -> None:  # a second command keeps "estimate" a subcommand
        """Print nothing."""

    return app


def run(app: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"ATHAR_LANG": "en", "COLUMNS": "120"})
    return result.exit_code, result.output


def as_json(app: typer.Typer, *args: str) -> dict[str, Any]:
    code, out = run(app, *args, "--json")
    assert code == 0, out
    data: dict[str, Any] = json.loads(out)
    return data


@pytest.fixture(scope="module")
def flat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Syrian example without strata (counts added up by history)."""
    lines = STRATA.read_text(encoding="utf-8").splitlines()
    totals: dict[str, int] = {}
    for line in lines[1:]:
        *bits, count, _ = line.split(",")
        totals[",".join(bits)] = totals.get(",".join(bits), 0) + int(count)
    path = tmp_path_factory.mktemp("estimate") / "histories.csv"
    header = ",".join(lines[0].split(",")[:-1])
    body = "".join(f"{h},{c}\n" for h, c in totals.items())
    path.write_text(f"{header}\n{body}", encoding="utf-8")
    return path


def test_one_model_json(app: typer.Typer, flat: Path) -> None:
    data = as_json(app, "estimate", str(flat), "--interactions", "مركز التوثيق:الشبكة")
    assert data["ok"] is True
    assert data["observed"] == 1294
    assert data["lists"] == ["مركز التوثيق", "الشبكة", "لجنة الحي", "المستشفى"]
    assert len(data["models"]) == 1
    model = data["models"][0]
    assert set(model) == MODEL_KEYS
    assert model["interactions"] == ["مركز التوثيق:الشبكة"]
    assert data["selected"] == "مركز التوثيق:الشبكة"
    low, high = model["ci"]
    assert low < model["N"] < high and model["N"] > data["observed"]
    assert data["averaged"] is None


def test_independence_model(app: typer.Typer, flat: Path) -> None:
    data = as_json(app, "estimate", str(flat), "--interactions", "")
    assert len(data["models"]) == 1
    assert data["models"][0]["interactions"] == [] and data["selected"] == ""
    assert data["models"][0]["df"] == 15 - 5


def test_model_search_text_and_json(app: typer.Typer, flat: Path, tmp_path: Path) -> None:
    data = as_json(app, "estimate", str(flat), "--criterion", "bic")
    assert len(data["models"]) == 64
    assert data["criterion"] == "bic"
    assert data["selected"] == ",".join(data["models"][0]["interactions"])
    assert [m["bic"] for m in data["models"]] == sorted(m["bic"] for m in data["models"])
    assert data["averaged"]["ci"][0] < data["N"] < data["averaged"]["ci"][1]
    plot = tmp_path / "models.svg"
    code, out = run(app, "estimate", str(flat), "--plot", str(plot))
    assert code == 0, out
    assert "Lists: 1 = مركز التوثيق · 2 = الشبكة" in out
    assert "Best model by AIC" in out and "Assumptions" in out
    assert plot.read_text(encoding="utf-8").startswith("<?xml")


def test_stratified_with_plot(app: typer.Typer, tmp_path: Path) -> None:
    plot = tmp_path / "strata.png"
    data = as_json(
        app,
        "estimate",
        str(STRATA),
        "--stratify",
        "المحافظة",
        "--interactions",
        "",
        "--plot",
        str(plot),
    )
    assert [s["stratum"] for s in data["strata"]] == ["حلب", "حمص", "دمشق"]
    assert data["observed"] == 1294 == sum(s["observed"] for s in data["strata"])
    assert data["N"] == pytest.approx(sum(s["N"] for s in data["strata"]))
    low, high = data["ci"]
    assert low < data["N"] < high
    assert plot.read_bytes().startswith(b"\x89PNG") and data["plot"] == str(plot)


def test_from_clusters(app: typer.Typer) -> None:
    data = as_json(
        app,
        "estimate",
        "--from-clusters",
        str(CLUSTERS),
        "--stratify",
        "المحافظة",
        "--interactions",
        "",
    )
    assert data["input"] == "clusters"
    assert data["observed"] == 1294
    assert len(data["strata"]) == 3


def test_lcmcr_text(app: typer.Typer, flat: Path) -> None:
    code, out = run(
        app,
        "estimate",
        str(flat),
        "--method",
        "lcmcr",
        "--burnin",
        "200",
        "--samples",
        "50",
        "--thin",
        "2",
        "--seed",
        "4",
    )
    assert code == 0, out
    assert "95% credible interval" in out and "R-hat" in out and "seed 4" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give either a HISTORIES.csv file or --from-clusters FILE"),
        (("x.csv", "--from-clusters", "y.csv"), "give either a HISTORIES.csv"),
        (("missing.csv",), "no such file: missing.csv"),
        (("{flat}", "--interactions", "A:B"), "unknown list A in --interactions"),
        (("{flat}", "--plot", "out.pdf"), "must end in .png or .svg"),
        (("{strata}",), "not 0 or 1"),
    ],
)
def test_errors(app: typer.Typer, flat: Path, args: tuple[str, ...], message: str) -> None:
    filled = [a.format(flat=flat, strata=STRATA) for a in args]
    code, out = run(app, "estimate", *filled)
    assert code == 2
    assert message in out
    code, out = run(app, "estimate", *filled, "--json")
    assert code == 2
    body = json.loads(out)
    assert body["ok"] is False and message in body["error"] and body["kind"] == "InputError"
