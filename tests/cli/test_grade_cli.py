"""`recog grade convert`: the result and its explanation, JSON output, one-line errors."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from cli.grade import app

# Rich colours only a terminal unless told otherwise; these make sure nobody tells it.
runner = CliRunner(env={"FORCE_COLOR": None, "TTY_COMPATIBLE": None, "COLUMNS": "120"})


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_convert_prints_the_grade_and_how_it_was_reached() -> None:
    code, out, err = run("convert", "4", "--best", "5", "--lowest-pass", "1")

    assert code == 0, err
    assert "Grade 4 -> German grade 1.7" in out
    assert "1. x = 1 + 3 × (5 − 4) / (5 − 1) = 1.75" in out
    assert "2. nearest German step (a tie goes to the better grade): 1.75 -> 1.7" in out
    assert err == ""


@pytest.mark.parametrize(
    ("nd", "nmax", "nmin", "truncated", "nearest"),
    [("4", "5", "1", "1.7", "1.7"), ("27", "30", "18", "1.7", "1.7"),
     ("8", "10", "6", "2.5", "2.3"), ("14", "20", "10", "2.8", "2.7")],
)  # fmt: skip
def test_the_worked_examples_with_both_roundings(
    nd: str, nmax: str, nmin: str, truncated: str, nearest: str
) -> None:
    for rounding, expected in (("nearest", nearest), ("truncate", truncated)):
        code, out, err = run(
            "convert", nd, "--best", nmax, "--lowest-pass", nmin, "--rounding", rounding, "--json"
        )
        assert code == 0, err
        assert json.loads(out)["grade"] == expected


def test_json_prints_one_object_with_everything_to_store() -> None:
    code, out, _ = run("convert", "14", "--scheme", "fr-eff17", "--json")

    assert code == 0
    stored = json.loads(out)
    assert stored["original"] == "14"
    assert stored["scheme"] == "fr-eff17"
    assert stored["method"] == "bavarian"
    assert stored["parameters"] == {
        "nd": "14",
        "nmax": "20",
        "nmin": "10",
        "effective_nmax": "17",
        "rounding": "nearest",
    }
    assert stored["exact"].startswith("2.2857")
    assert stored["grade"] == "2.3"
    assert len(stored["explanation"]) == 4
    assert out.count("\n") == 1


def test_a_scheme_replaces_best_and_lowest_pass() -> None:
    code, out, _ = run("convert", "C", "--scheme", "ects")

    assert code == 0
    assert "Grade C -> German grade 2.3" in out
    assert "C is ordinal 3; Nmax = 1, Nmin = 5" in out


def test_pass_fail_stays_passed() -> None:
    code, out, _ = run("convert", "bestanden", "--scheme", "passfail", "--json")

    assert code == 0
    assert json.loads(out)["grade"] == "passed"
    assert json.loads(out)["method"] == "passfail"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("0", "--best", "5", "--lowest-pass", "1"),
            "error: grade 0 is a fail (worse than the lowest pass 1) and is not converted; "
            "allowed range: 5 (best) to 1 (lowest pass)",
        ),
        (
            ("6", "--best", "5", "--lowest-pass", "1"),
            "error: grade 6 is out of range (better than the best grade 5); "
            "allowed range: 5 (best) to 1 (lowest pass)",
        ),
        (
            ("F", "--scheme", "ects"),
            "error: grade F on scheme ects is a fail and is not converted; "
            "passing grades: A (best) to E (lowest pass)",
        ),
        (
            ("4", "--scheme", "xx"),
            "error: unknown grading scheme 'xx'; known schemes: "
            "de, ects, es, fi, fr, fr-eff17, it, nl, passfail, pl",
        ),
        (
            ("4", "--best", "5", "--lowest-pass", "1", "--rounding", "up"),
            "error: unknown rounding 'up'; choose one of: nearest, truncate",
        ),
        (
            ("4", "--scheme", "fi", "--best", "5"),
            "error: give either --scheme or --best/--lowest-pass, not both",
        ),
        (("4", "--best", "5"), "error: give --best and --lowest-pass (Nmax and Nmin), or --scheme"),
        (("4", "--best", "5", "--lowest-pass", "5"), "error: best grade and lowest pass are both"),
        (("four", "--best", "5", "--lowest-pass", "1"), "error: grade 'four' is not a number"),
        (("failed", "--scheme", "passfail"), "error: grade 'failed' on scheme passfail is a fail"),
    ],
)
def test_errors_are_one_line_on_stderr_and_exit_1(args: tuple[str, ...], message: str) -> None:
    code, out, err = run("convert", *args, "--json")

    assert code == 1
    assert out == ""
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_the_app_works_mounted_as_recog_grade() -> None:
    recog = typer.Typer()
    recog.add_typer(app, name="grade")

    result = runner.invoke(recog, ["grade", "convert", "27", "--best", "30", "--lowest-pass", "18"])

    assert result.exit_code == 0, result.stderr
    assert "German grade 1.7" in result.stdout


def test_help_names_the_options() -> None:
    result = runner.invoke(app, ["convert", "--help"])

    assert result.exit_code == 0
    for option in ("--best", "--lowest-pass", "--rounding", "--scheme", "--json"):
        assert option in result.stdout
