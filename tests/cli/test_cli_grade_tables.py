"""`recog grade table` end to end on the demo: a clerk imports the partner's table and the
office's distribution (a bad file changes nothing and says where it is wrong), `recog case
show` puts both conversions side by side, the examiner decides by percentiles, and `recog
grade convert --percentile` converts with stored tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# Italian grades of the case's partner: 27 covers the band 2 to 10 %, midpoint 6 %, which lies
# in the home band of 1.3 (5 to 13 %); the Bavarian formula gives 1.7: they differ by 0.4.
PARTNER = [("30", 2), ("27", 8), ("24", 50), ("18", 40)]
HOME = [("1.0", 5), ("1.3", 8), ("1.7", 12), ("2.0", 15), ("2.3", 15), ("2.7", 13),
        ("3.0", 12), ("3.3", 8), ("3.7", 7), ("4.0", 5)]


def test_import_show_decide_and_convert(cli: Callable[..., Any], demo_db: Path,
                                        tmp_path: Path) -> None:
    case = str(next(c["id"] for c in cli("case", "list", "--state", "in_review",
                                             "--json").json()))
    shown = cli("case", "show", case, "--json").json()
    partner, module = shown["course"]["partner"], shown["targets"][0]["code"]
    assert shown["result"]["grade"] == "27"
    assert shown["conversions"]["percentile"] is None
    assert "no partner grading table" in shown["conversions"]["errors"]["percentile"]

    bad = tmp_path / "bad.csv"
    bad.write_text("kind,institution,scheme,module,reference_year,grade,percentage\n"
                   f"partner,{partner},it,,2025,31,100\n"
                   f"home,uni-musterstadt.de,,NOPE,2025,1.0,100\n", encoding="utf-8")
    refused = cli("grade", "table", "import", str(bad), check=False)
    assert refused.code == 1
    assert "bad.csv: 2 problem(s), nothing imported" in refused.err
    assert "bad.csv, line 2, field grade: 31 is better than the best grade 30 of scheme it" \
        in refused.err
    assert "bad.csv, line 3, field module: uni-musterstadt.de has no module NOPE" in refused.err
    assert cli("grade", "table", "list", "--json").json() == []

    good = tmp_path / "tables.csv"
    good.write_text(
        "kind;institution;scheme;module;reference_year;grade;percentage\n"
        + "".join(f"partner;{partner};it;;2025;{g};{p}\n" for g, p in PARTNER)
        + "".join(f"home;uni-musterstadt.de;;{module};2025;{g};{p}\n" for g, p in HOME),
        encoding="utf-8")
    assert "tables.csv: 2 tables created, 0 replaced, 0 unchanged" in \
        cli("grade", "table", "import", str(good)).out
    tables = {t["kind"]: t for t in cli("grade", "table", "list", "--json").json()}
    assert tables["partner"]["shares"] == "30: 2 · 27: 8 · 24: 50 · 18: 40"
    assert tables["home"]["scope_label"] == f"module {module}"
    listed = cli("grade", "table", "list").out
    assert "whole institution" in listed
    assert f"module {module}" in listed

    text = cli("case", "show", case).out
    assert "Bavarian:  27 (it) -> 1.7" in text
    assert "Percentile: 27 (it) -> 1.3" in text
    assert "Flag:      the two conversions differ by 0.4" in text

    fired = cli("case", "fire", case, "recognize", "--actor", "examiner", "--data",
                f"modules={module}", "--data", "conversion=percentile", "--json").json()
    assert fired["to"] == "recognized"
    decision = cli("case", "show", case, "--json").json()["decision"]
    assert (decision["grade"], decision["conversion"]["method"]) == ("1.3", "percentile")
    parameters = decision["conversion"]["parameters"]
    assert (parameters["partner_table_id"], parameters["home_table_id"]) == (
        tables["partner"]["id"], tables["home"]["id"])

    ids = f"{tables['partner']['id']},{tables['home']['id']}"
    both = cli("grade", "convert", "27", "--scheme", "it", "--percentile", ids, "--json").json()
    assert (both["first"]["grade"], both["second"]["grade"]) == ("1.7", "1.3")
    assert (both["difference"], both["differs"]) == ("0.4", True)
    wrong = cli("grade", "convert", "27", "--percentile", f"{tables['home']['id']},1",
                check=False)
    assert wrong.code == 1
    assert f"there is no partner table {tables['home']['id']}" in wrong.err
