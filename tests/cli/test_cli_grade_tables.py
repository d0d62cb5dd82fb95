"""`recog grade table` end to end: a clerk imports the partner's table and the
office's distribution (a bad file changes nothing and says where it is wrong), `recog case
show` puts both conversions side by side, the examiner decides by percentiles, and `recog
grade convert --percentile` converts with stored tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.factories import CaseFactory, musterstadt

# Italian grades of the case's partner: 27 covers the band 2 to 10 %, midpoint 6 %, which lies
# in the home band of 1.3 (5 to 13 %); the Bavarian formula gives 1.7: they differ by 0.4.
PARTNER = [("30", 2), ("27", 8), ("24", 50), ("18", 40)]
HOME = [
    ("1.0", 5),
    ("1.3", 8),
    ("1.7", 12),
    ("2.0", 15),
    ("2.3", 15),
    ("2.7", 13),
    ("3.0", 12),
    ("3.3", 8),
    ("3.7", 7),
    ("4.0", 5),
]


@pytest.fixture
def review_db(cli_db: Any) -> None:
    """A case in review whose partner result is 27 on the Italian scale; no grading tables."""
    with cli_db():
        musterstadt()
        CaseFactory(state="in_review", data={"pass_course": {"grade": "27", "scheme": "it"}})


def test_import_show_decide_and_convert(
    cli: Callable[..., Any], review_db: None, tmp_path: Path
) -> None:
    case = str(next(c["id"] for c in cli("case", "list", "--state", "in_review", "--json").json()))
    shown = cli("case", "show", case, "--json").json()
    partner, module = shown["course"]["partner"], shown["targets"][0]["code"]
    assert shown["result"]["grade"] == "27"
    assert shown["conversions"]["percentile"] is None
    # The same shape as the API's conversions: a missing table is said by tables_missing.
    assert "no partner grading table" in shown["conversions"]["tables_missing"]
    # No table of this partner is stored yet.
    seeded = cli("grade", "table", "list", "--json").json()
    assert partner not in {t["institution"] for t in seeded}

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "kind,institution,scheme,module,reference_year,grade,percentage\n"
        f"partner,{partner},it,,2025,31,100\n"
        f"home,uni-musterstadt.de,,NOPE,2025,1.0,100\n",
        encoding="utf-8",
    )
    refused = cli("grade", "table", "import", str(bad), check=False)
    assert refused.code == 1
    assert "bad.csv: 2 problem(s), nothing imported" in refused.err
    assert (
        "bad.csv, line 2, field grade: 31 is better than the best grade 30 of scheme it"
        in refused.err
    )
    assert "bad.csv, line 3, field module: uni-musterstadt.de has no module NOPE" in refused.err
    assert cli("grade", "table", "list", "--json").json() == seeded

    good = tmp_path / "tables.csv"
    good.write_text(
        "kind;institution;scheme;module;reference_year;grade;percentage\n"
        + "".join(f"partner;{partner};it;;2025;{g};{p}\n" for g, p in PARTNER)
        + "".join(f"home;uni-musterstadt.de;;{module};2025;{g};{p}\n" for g, p in HOME),
        encoding="utf-8",
    )
    assert (
        "tables.csv: 2 tables created, 0 replaced, 0 unchanged"
        in cli("grade", "table", "import", str(good)).out
    )
    known = {t["id"] for t in seeded}
    tables = {
        t["kind"]: t for t in cli("grade", "table", "list", "--json").json() if t["id"] not in known
    }
    assert tables["partner"]["shares"] == "30: 2 · 27: 8 · 24: 50 · 18: 40"
    assert tables["home"]["scope_label"] == f"module {module}"
    listed = cli("grade", "table", "list").out
    assert "whole institution" in listed
    assert f"module {module}" in listed

    text = cli("case", "show", case).out
    assert "Bavarian:  27 (it) -> 1.7" in text
    assert "Percentile: 27 (it) -> 1.3" in text
    assert "Flag:      the two conversions differ by 0.4" in text

    fired = cli(
        "case",
        "fire",
        case,
        "recognize",
        "--actor",
        "examiner",
        "--data",
        f"modules={module}",
        "--data",
        "conversion=percentile",
        "--json",
    ).json()
    assert fired["to"] == "recognized"
    decision = cli("case", "show", case, "--json").json()["decision"]
    assert (decision["grade"], decision["conversion"]["method"]) == ("1.3", "percentile")
    parameters = decision["conversion"]["parameters"]
    assert (parameters["partner_table_id"], parameters["home_table_id"]) == (
        tables["partner"]["id"],
        tables["home"]["id"],
    )

    ids = f"{tables['partner']['id']},{tables['home']['id']}"
    both = cli("grade", "convert", "27", "--scheme", "it", "--percentile", ids, "--json").json()
    assert (both["first"]["grade"], both["second"]["grade"]) == ("1.7", "1.3")
    assert (both["difference"], both["differs"]) == ("0.4", True)
    wrong = cli("grade", "convert", "27", "--percentile", f"{tables['home']['id']},1", check=False)
    assert wrong.code == 1
    assert f"there is no partner table {tables['home']['id']}" in wrong.err


# The same partner's table in bands (EGRACONS allows them): 27 lies in 25-27, on its upper
# bound, which belongs to it; the band covers 2 to 10 %, midpoint 6 %, home band of 1.3.
BANDS = [("18-20", 40), ("21-24", 50), ("25-27", 8), ("28-30", 2)]
# A partner on a percentage scale Recog has no scheme for: listed best first.
PERCENT = [("90-100", 10), ("80-89.9", 20), ("70-79.9", 30), ("60-69.9", 25), ("50-59.9", 15)]


def test_a_partner_table_of_ranges(
    cli: Callable[..., Any], review_db: None, tmp_path: Path
) -> None:
    case = str(next(c["id"] for c in cli("case", "list", "--state", "in_review", "--json").json()))
    shown = cli("case", "show", case, "--json").json()
    partner, module = shown["course"]["partner"], shown["targets"][0]["code"]
    seeded = cli("grade", "table", "list", "--json").json()  # the tables stored before

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "kind;institution;scheme;reference_year;grade;percentage\n"
        f"partner;{partner};it;2025;28-30;10\n"
        f"partner;{partner};it;2025;24-28;90\n",
        encoding="utf-8",
    )
    refused = cli("grade", "table", "import", str(bad), check=False)
    assert refused.code == 1
    assert (
        "bad.csv, line 3, field grade: band 24-28 overlaps band 28-30: both hold 28" in refused.err
    )
    assert cli("grade", "table", "list", "--json").json() == seeded

    good = tmp_path / "tables.json"
    good.write_text(
        json.dumps(
            [
                {
                    "kind": "partner",
                    "institution": partner,
                    "scheme": "it",
                    "reference_year": 2025,
                    "grade": g,
                    "percentage": p,
                }
                for g, p in BANDS
            ]
            + [
                {
                    "kind": "partner",
                    "institution": partner,
                    "scheme": "pct",
                    "isced": "0613",
                    "reference_year": 2025,
                    "grade": g,
                    "percentage": p,
                }
                for g, p in PERCENT
            ]
            + [
                {
                    "kind": "home",
                    "institution": "uni-musterstadt.de",
                    "module": module,
                    "reference_year": 2025,
                    "grade": g,
                    "percentage": p,
                }
                for g, p in HOME
            ]
        ),
        encoding="utf-8",
    )
    assert (
        "tables.json: 3 tables created, 0 replaced, 0 unchanged"
        in cli("grade", "table", "import", str(good)).out
    )
    known = {t["id"] for t in seeded}
    tables = {
        (t["kind"], t["scheme"]): t
        for t in cli("grade", "table", "list", "--json").json()
        if t["id"] not in known
    }
    assert tables[("partner", "it")]["shares"] == "28-30: 2 · 25-27: 8 · 21-24: 50 · 18-20: 40"

    text = cli("case", "show", case).out
    assert "Bavarian:  27 (it) -> 1.7" in text
    assert "Percentile: 27 (it) -> 1.3" in text

    home = tables[("home", "de")]["id"]
    ids = f"{tables[('partner', 'it')]['id']},{home}"
    inside = cli("grade", "convert", "26,5", "--percentile", ids, "--json").json()
    assert (inside["original"], inside["grade"]) == ("26,5", "1.3")
    assert inside["parameters"]["partner_band"] == {"label": "25-27", "lower": "25", "upper": "27"}
    outside = cli("grade", "convert", "27,5", "--percentile", ids, check=False)
    assert outside.code == 1
    assert (
        "grade 27,5 lies in none of the bands of the partner's table "
        f"#{tables[('partner', 'it')]['id']} (bounds included): 28-30, 25-27, 21-24, "
        "18-20"
    ) in outside.err
    # 87,5 lies in 80-89.9, which covers 10 to 30 %: midpoint 20 %, home band of 1.7 (13-25)
    percent = cli(
        "grade", "convert", "87,5", "--percentile", f"{tables[('partner', 'pct')]['id']},{home}"
    ).out
    assert "Grade 87,5 -> German grade 1.7" in percent
    assert "87,5 lies in the partner's band 80-89.9 (80 to 89.9, bounds included)" in percent
