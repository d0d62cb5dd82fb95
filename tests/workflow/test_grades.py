"""Grade conversion: the reference's worked examples, the refusals, schemes, percentiles."""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.errors import ValidationFailed
from workflow.grading.grades import (
    DEFAULT_SCHEMES,
    GERMAN_STEPS,
    Conversion,
    GradingScheme,
    Rounding,
    bavarian,
    compare,
    convert,
    get_scheme,
    load_schemes,
    percentile,
)

# grade-conversion.md: foreign scale, Nmax, Nmin, Nd, exact x, truncate, nearest (tie to better)
WORKED_EXAMPLES = [
    pytest.param("fi", "5", "1", "4", "1.75", "1.7", "1.7", id="Finland 5..1"),
    pytest.param("it", "30", "18", "27", "1.75", "1.7", "1.7", id="Italy 30..18"),
    pytest.param("nl", "10", "6", "8", "2.50", "2.5", "2.3", id="10..6 scale"),
    pytest.param("fr", "20", "10", "14", "2.80", "2.8", "2.7", id="France 20..10 nominal"),
]

PARTNER_0612 = {"A": "2.0", "B": "9.9", "C": "36.3", "D": "26.3", "E": "24.7", "F": "0.8"}
HOME = {
    "1.0": 5, "1.3": 8, "1.7": 12, "2.0": 15, "2.3": 15,
    "2.7": 13, "3.0": 12, "3.3": 8, "3.7": 7, "4.0": 5,
}  # fmt: skip
TENTH = Decimal("0.1")


def tenth(value: Decimal) -> str:
    return str(value.quantize(TENTH))


# --- the worked examples -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "nmax", "nmin", "nd", "exact", "truncated", "nearest"), WORKED_EXAMPLES
)
def test_worked_examples_with_both_roundings(
    code: str, nmax: str, nmin: str, nd: str, exact: str, truncated: str, nearest: str
) -> None:
    by_nearest = bavarian(nd, nmax, nmin, "nearest")
    by_truncation = bavarian(nd, nmax, nmin, "truncate")

    assert by_nearest.exact == Decimal(exact)
    assert by_nearest.grade == nearest
    assert by_truncation.exact == Decimal(exact)
    assert by_truncation.grade == truncated
    assert by_nearest.method == "bavarian"
    assert by_nearest.scheme is None
    assert by_nearest.parameters["rounding"] == "nearest"
    assert by_truncation.parameters["rounding"] == "truncate"


@pytest.mark.parametrize(
    ("code", "nmax", "nmin", "nd", "exact", "truncated", "nearest"), WORKED_EXAMPLES
)
def test_worked_examples_through_the_default_schemes(
    code: str, nmax: str, nmin: str, nd: str, exact: str, truncated: str, nearest: str
) -> None:
    assert get_scheme(code).best == nmax
    assert get_scheme(code).lowest_pass == nmin

    result = convert(nd, code, "nearest")

    assert (result.scheme, result.exact, result.grade) == (code, Decimal(exact), nearest)
    assert convert(nd, code, "truncate").grade == truncated
    assert result.parameters["nmax"] == Decimal(nmax)
    assert result.parameters["nmin"] == Decimal(nmin)


def test_the_explanation_shows_the_formula_and_the_rounding() -> None:
    result = bavarian("8", "10", "6", "nearest")

    assert result.explanation == (
        "x = 1 + 3 × (10 − 8) / (10 − 6) = 2.50",
        "nearest German step (a tie goes to the better grade): 2.50 -> 2.3"
        " (2.50 lies exactly between 2.3 and 2.7)",
    )


def test_truncation_keeps_a_value_that_is_not_a_german_step() -> None:
    result = bavarian("14", "20", "10", "truncate")

    assert result.grade == "2.8"
    assert "not a German step; truncation keeps 2.8" in result.explanation[-1]


# --- rounding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "nearest", "truncated"),
    [
        ("2.5", "2.3", "2.5"),
        ("1.15", "1.0", "1.1"),
        ("3.85", "3.7", "3.8"),
        ("1.75", "1.7", "1.7"),
    ],
)
def test_rounding_examples_of_the_reference(x: str, nearest: str, truncated: str) -> None:
    # On the German scale itself the formula is the identity, so x can be chosen directly.
    assert bavarian(x, "1.0", "4.0", "nearest").grade == nearest
    assert bavarian(x, "1.0", "4.0", "truncate").grade == truncated


@pytest.mark.parametrize(
    ("midpoint", "better"),
    [
        ("1.15", "1.0"),
        ("1.5", "1.3"),
        ("1.85", "1.7"),  # float arithmetic picks 2.0 here
        ("2.15", "2.0"),
        ("2.5", "2.3"),
        ("2.85", "2.7"),  # float arithmetic computes 2.8500000000000005 and picks 3.0
        ("3.15", "3.0"),
        ("3.5", "3.3"),
        ("3.85", "3.7"),
    ],
)
def test_every_tie_between_steps_goes_to_the_better_grade(midpoint: str, better: str) -> None:
    assert bavarian(midpoint, "1.0", "4.0", "nearest").grade == better


def test_a_non_terminating_value_is_rounded_from_its_exact_value() -> None:
    result = convert("14", "fr-eff17", "nearest")

    assert result.exact is not None
    assert result.exact.quantize(Decimal("0.0001")) == Decimal("2.2857")
    assert result.grade == "2.3"
    assert convert("14", "fr-eff17", "truncate").grade == "2.2"
    assert "= 2.2857…" in result.explanation[-2]


def test_a_decimal_comma_is_read_as_a_decimal_point() -> None:
    assert convert("1,7", "de", "nearest").grade == "1.7"
    assert convert("4,5", "pl", "nearest").original == "4,5"


def test_an_unknown_rounding_policy_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="unknown rounding 'up'; choose one of: nearest"):
        bavarian("4", "5", "1", "up")  # type: ignore[arg-type]


# --- range, fails and configuration errors -------------------------------------------------


@pytest.mark.parametrize("rounding", ["nearest", "truncate"])
@pytest.mark.parametrize("code", ["fi", "it", "fr", "fr-eff17", "es", "nl", "pl", "de"])
def test_best_grade_is_1_0_and_lowest_pass_is_4_0(code: str, rounding: Rounding) -> None:
    scheme = get_scheme(code)

    assert convert(scheme.best, scheme, rounding).grade == "1.0"
    assert convert(scheme.lowest_pass, scheme, rounding).grade == "4.0"


def test_a_fail_is_refused_with_the_grade_and_the_allowed_range() -> None:
    with pytest.raises(ValidationFailed) as refused:
        bavarian("0", "5", "1", "nearest")

    assert str(refused.value) == (
        "grade 0 is a fail (worse than the lowest pass 1) and is not converted; "
        "allowed range: 5 (best) to 1 (lowest pass)"
    )


def test_a_grade_better_than_the_best_is_refused_as_out_of_range() -> None:
    with pytest.raises(ValidationFailed) as refused:
        bavarian("31", "30", "18", "nearest")

    assert str(refused.value) == (
        "grade 31 is out of range (better than the best grade 30); "
        "allowed range: 30 (best) to 18 (lowest pass)"
    )


def test_a_fail_on_a_scheme_names_the_scheme() -> None:
    with pytest.raises(ValidationFailed, match=r"^grade 17 on scheme it is a fail .* 30 \(best\)"):
        convert("17", "it", "nearest")


@pytest.mark.parametrize(
    ("grade", "problem"),
    [("4.3", "is a fail"), ("0.7", "is out of range")],
)
def test_fails_and_out_of_range_on_a_descending_scale(grade: str, problem: str) -> None:
    with pytest.raises(ValidationFailed, match=re.escape(f"grade {grade} on scheme de {problem}")):
        convert(grade, "de", "nearest")


def test_a_scale_without_range_is_a_configuration_error() -> None:
    with pytest.raises(ValidationFailed, match="both 5: the scale has no range"):
        bavarian("5", "5", "5", "nearest")


@pytest.mark.parametrize("grade", ["x", "NaN", "Infinity", "", "1e40", "1.0000000000000000000001"])
def test_something_that_is_not_a_grade_is_refused(grade: str) -> None:
    with pytest.raises(ValidationFailed, match="grade"):
        bavarian(grade, "5", "1", "nearest")


def test_a_word_on_a_numeric_scheme_points_to_pass_fail() -> None:
    with pytest.raises(ValidationFailed, match="use the scheme 'passfail'"):
        convert("passed", "fi", "nearest")


# --- ascending and descending scales -------------------------------------------------------


def test_ascending_and_descending_scales_agree() -> None:
    ascending = bavarian("4", "5", "1", "nearest")  # Finland: higher is better
    descending = bavarian("2", "1", "5", "nearest")  # the same scale written the other way round

    assert ascending.exact == descending.exact == Decimal("1.75")
    assert ascending.grade == descending.grade == "1.7"


def test_a_descending_foreign_scale() -> None:
    # A 1 (best) to 3 (lowest pass) scale, as in the Czech system.
    assert bavarian("2", "1", "3", "nearest").grade == "2.3"
    assert bavarian("2", "1", "3", "truncate").grade == "2.5"


def test_the_german_scale_converts_to_itself() -> None:
    for step in GERMAN_STEPS:
        assert convert(step, "de", "nearest").grade == str(step)


# --- letters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("letter", "exact", "nearest", "truncated"),
    [
        ("A", "1", "1.0", "1.0"),
        ("B", "1.75", "1.7", "1.7"),
        ("C", "2.5", "2.3", "2.5"),
        ("D", "3.25", "3.3", "3.2"),
        ("E", "4", "4.0", "4.0"),
        ("c", "2.5", "2.3", "2.5"),
    ],
)
def test_ects_letters_are_converted_through_their_ordinals(
    letter: str, exact: str, nearest: str, truncated: str
) -> None:
    result = convert(letter, "ects", "nearest")

    assert result.exact == Decimal(exact)
    assert result.grade == nearest
    assert result.original == letter
    assert convert(letter, "ects", "truncate").grade == truncated
    assert result.parameters["ordinals"] == {"A": 1, "B": 2, "C": 3, "D": 4, "E": 5}
    assert (result.parameters["nmax"], result.parameters["nmin"]) == (1, 5)


@pytest.mark.parametrize("letter", ["F", "FX", "fx"])
def test_a_failing_letter_is_refused_as_a_fail(letter: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        convert(letter, "ects", "nearest")

    assert str(refused.value) == (
        f"grade {letter} on scheme ects is a fail and is not converted; "
        "passing grades: A (best) to E (lowest pass)"
    )


def test_an_unknown_letter_is_refused_with_the_known_ones() -> None:
    with pytest.raises(
        ValidationFailed, match="'G' is not a grade of scheme ects; passing grades: A, B, C, D, E"
    ):
        convert("G", "ects", "nearest")


def test_the_letter_example_of_the_reference() -> None:
    scheme = GradingScheme(
        "plus", "A+ to D", "letter", "A+", "D", letters=("A+", "A", "B", "C", "D"), failing=("F",)
    )

    result = convert("C", scheme, "nearest")

    assert (result.parameters["nmax"], result.parameters["nmin"]) == (1, 5)
    assert result.exact == Decimal("3.25")
    assert result.grade == "3.3"
    assert convert("A+", scheme, "nearest").grade == "1.0"


# --- pass/fail -----------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["passed", "pass", "P", "bestanden", "Bestanden", " PASSED "])
def test_a_pass_stays_passed(word: str) -> None:
    result = convert(word, "passfail", "nearest")

    assert result.grade == "passed"
    assert result.method == "passfail"
    assert result.exact is None
    assert result.numeric_grade is None
    assert "stays 'passed'" in result.explanation[-1]


@pytest.mark.parametrize("word", ["failed", "nicht bestanden", "F"])
def test_a_fail_on_pass_fail_is_refused(word: str) -> None:
    with pytest.raises(ValidationFailed, match="is a fail and is not converted"):
        convert(word, "passfail", "nearest")


def test_something_else_on_pass_fail_is_refused_with_the_accepted_words() -> None:
    with pytest.raises(ValidationFailed, match=r"not a pass/fail result .* passed: passed, pass"):
        convert("1.7", "passfail", "nearest")


# --- effective Nmax ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grade", "expected"),
    [("20", "1.0"), ("18", "1.0"), ("17", "1.0"), ("14", "2.3"), ("10", "4.0")],
)
def test_the_effective_best_of_the_french_scale(grade: str, expected: str) -> None:
    result = convert(grade, "fr-eff17", "nearest")

    assert result.grade == expected
    assert result.parameters["nmax"] == 20
    assert result.parameters["effective_nmax"] == 17


def test_a_grade_above_the_effective_best_says_it_counts_as_it() -> None:
    result = convert("18", "fr-eff17", "nearest")

    assert "18 is better than the effective best 17: it counts as 17" in result.explanation
    assert result.parameters["nd"] == 17


def test_the_effective_best_does_not_widen_the_scale() -> None:
    with pytest.raises(ValidationFailed, match=r"grade 21 .* out of range .* 20 \(best\)"):
        convert("21", "fr-eff17", "nearest")
    with pytest.raises(ValidationFailed, match=r"grade 9 .* is a fail"):
        convert("9", "fr-eff17", "nearest")


def test_bavarian_takes_an_effective_best() -> None:
    assert bavarian("14", "20", "10", "nearest", effective_best="17").grade == "2.3"
    assert bavarian("14", "20", "10", "nearest").grade == "2.7"
    with pytest.raises(ValidationFailed, match="effective best 10 must lie between"):
        bavarian("14", "20", "10", "nearest", effective_best="10")


# --- schemes -------------------------------------------------------------------------------


def test_the_documented_default_schemes_are_there() -> None:
    assert {"fi", "it", "fr", "fr-eff17", "es", "nl", "ects", "pl", "de", "passfail"} <= set(
        DEFAULT_SCHEMES
    )
    assert get_scheme("ects").failing == ("FX", "F")
    assert get_scheme("nl").lowest_pass == "6"
    assert get_scheme("fr-eff17").effective_best == "17"


def test_a_scheme_code_is_looked_up_case_insensitively() -> None:
    assert get_scheme(" FI ") is DEFAULT_SCHEMES["fi"]


def test_an_unknown_scheme_lists_the_known_codes() -> None:
    with pytest.raises(ValidationFailed) as refused:
        get_scheme("xx")

    assert str(refused.value) == (
        "unknown grading scheme 'xx'; known schemes: "
        "de, ects, es, fi, fr, fr-eff17, it, nl, passfail, pl"
    )


def test_load_schemes_adds_a_scheme_from_configuration() -> None:
    schemes = load_schemes(
        {
            "UK": {
                "name": "UK degree classes",
                "kind": "letter",
                "letters": ["First", "2:1", "2:2", "Third"],
                "failing": ["Fail"],
            }
        }
    )

    uk = get_scheme("uk", schemes)
    assert (uk.best, uk.lowest_pass) == ("First", "Third")
    assert convert("2:1", "uk", "nearest", schemes=schemes).grade == "2.0"
    with pytest.raises(ValidationFailed, match="grade Fail on scheme uk is a fail"):
        convert("Fail", "uk", "nearest", schemes=schemes)
    assert "uk" not in DEFAULT_SCHEMES


def test_load_schemes_overrides_single_fields_of_a_default() -> None:
    schemes = load_schemes({"fr": {"effective_best": 16.0}, "it": {"lowest_pass": 20}})

    assert schemes["fr"].effective_best == "16.0"
    assert schemes["fr"].name == DEFAULT_SCHEMES["fr"].name
    assert schemes["it"].best == "30"
    assert convert("20", "it", "nearest", schemes=schemes).grade == "4.0"
    assert DEFAULT_SCHEMES["fr"].effective_best is None


def test_changing_the_kind_starts_a_scheme_from_scratch() -> None:
    schemes = load_schemes({"fi": {"name": "Finland pass/fail", "kind": "passfail"}})

    assert schemes["fi"].letters == DEFAULT_SCHEMES["passfail"].letters
    assert convert("passed", "fi", "nearest", schemes=schemes).grade == "passed"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"xx": {"name": "X", "kind": "numeric", "best": 10}}, "'xx', field 'lowest_pass'"),
        ({"xx": {"name": "X", "best": 10, "lowest_pass": 5}}, "'xx', field 'kind': is missing"),
        ({"xx": {"name": "X", "kind": "grades"}}, "'xx', field 'kind': 'grades' is not one of"),
        ({"xx": {"name": "X", "kind": "numeric", "best": 5, "lowest_pass": 5}}, "'lowest_pass'"),
        ({"xx": {"name": "X", "kind": "numeric", "best": "ten", "lowest_pass": 5}}, "'best'"),
        ({"xx": {"name": "X", "kind": "numeric", "best": True, "lowest_pass": 5}}, "'best'"),
        ({"xx": {"name": "X", "kind": "letter", "letters": "ABC"}}, "'xx', field 'letters'"),
        ({"xx": {"name": "X", "kind": "letter", "letters": ["A"]}}, "at least two"),
        (
            {"xx": {"name": "X", "kind": "letter", "letters": ["A", "B"], "lowest_pass": "A"}},
            "'xx', field 'lowest_pass': must be the last passing letter 'B'",
        ),
        (
            {"xx": {"name": "X", "kind": "letter", "letters": ["A", "B"], "failing": ["b"]}},
            "listed more than once",
        ),
        ({"fr": {"effective_best": 25}}, "'fr', field 'effective_best': 25 must lie between"),
        ({"fr": {"lowest-pass": 8}}, "'fr': unknown field 'lowest-pass'; known fields: name"),
        ({"fr": "20..10"}, "'fr': expected a table of fields"),
        ({"Not A Code!": {"name": "X", "kind": "passfail"}}, "must be lower-case letters"),
    ],
)
def test_load_schemes_names_the_scheme_and_field_in_errors(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationFailed, match=re.escape(message)):
        load_schemes(data)


# --- percentile conversion -----------------------------------------------------------------


def test_the_percentile_worked_example() -> None:
    result = percentile("C", PARTNER_0612, HOME)
    details = result.percentile

    assert details is not None
    assert (tenth(details.band.lower), tenth(details.band.upper)) == ("12.0", "48.6")
    assert [(step, tenth(points)) for step, points in details.overlaps] == [
        ("1.3", "1.0"),
        ("1.7", "12.0"),
        ("2.0", "15.0"),
        ("2.3", "8.6"),
    ]
    assert tenth(details.midpoint) == "30.3"
    assert result.exact == details.midpoint
    assert (result.grade, details.by_midpoint, details.by_largest_overlap) == ("2.0", "2.0", "2.0")
    assert result.method == "percentile"
    assert [
        (band.label, tenth(band.lower), tenth(band.upper)) for band in details.home_bands[:5]
    ] == [
        ("1.0", "0.0", "5.0"),
        ("1.3", "5.0", "13.0"),
        ("1.7", "13.0", "25.0"),
        ("2.0", "25.0", "40.0"),
        ("2.3", "40.0", "55.0"),
    ]


def test_the_percentile_explanation_shows_the_whole_overlapping_range() -> None:
    steps = percentile("C", PARTNER_0612, HOME).explanation

    assert "failing grades left out: F (0.8 %); the remaining 99.2 % are renormalised" in steps[0]
    assert "C covers the band 12.0 to 48.6" in steps
    assert "C overlaps 1.3 by 1.0, 1.7 by 12.0, 2.0 by 15.0, 2.3 by 8.6 points" in steps
    assert "its midpoint 30.3 lies in the home band of 2.0: C converts to 2.0" in steps


def test_percentile_and_bavarian_can_differ_and_the_flag_says_so() -> None:
    by_percentile = percentile("C", PARTNER_0612, HOME, scheme="ects")
    by_formula = convert("C", "ects", "truncate")

    assert by_formula.exact == Decimal("2.5")
    comparison = compare(by_percentile, by_formula)
    assert comparison.difference == Decimal("0.5")
    assert comparison.differs
    assert compare(by_percentile, convert("C", "ects", "nearest")).differs  # 2.0 vs 2.3


def test_the_largest_overlap_is_shown_when_it_differs_from_the_midpoint() -> None:
    # A covers 0-60 (midpoint 30); the home bands are 0-28, 28-32 and 32-100.
    result = percentile("A", {"A": 60, "B": 40}, {"1.0": 28, "1.3": 4, "1.7": 68})
    details = result.percentile

    assert details is not None
    assert (details.by_midpoint, details.by_largest_overlap) == ("1.3", "1.0")
    assert result.grade == "1.3"
    assert "the largest overlap gives 1.0, not 1.3: look at both" in result.explanation


def test_a_midpoint_on_a_boundary_goes_to_the_better_grade() -> None:
    result = percentile("A", [("A", "50"), ("B", "50")], [("1.0", "25"), ("1.3", "75")])

    assert result.grade == "1.0"
    assert "a boundary goes to the better" in result.explanation[-2]


def test_a_failing_grade_is_not_converted_by_percentiles() -> None:
    with pytest.raises(ValidationFailed, match="grade F is a fail and is not converted"):
        percentile("F", PARTNER_0612, HOME)


def test_a_grade_missing_from_the_partner_table_is_refused() -> None:
    with pytest.raises(ValidationFailed, match=r"'A\+' is not in the partner's table; .* A, B"):
        percentile("A+", PARTNER_0612, HOME)


@pytest.mark.parametrize(
    ("home", "message"),
    [
        ({"1.5": 100}, "'1.5' is not a German step"),
        ({"1.0": -5, "2.0": 105}, "negative"),
        ({"1.0": 0}, "the home table has no passing grades above 0 %"),
    ],
)
def test_a_bad_home_table_is_refused(home: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        percentile("C", PARTNER_0612, home)


def test_a_grade_nobody_else_got_still_converts_at_its_point() -> None:
    result = percentile("B", {"A": 50, "B": 0, "C": 50}, {"1.0": 40, "1.3": 60})

    assert result.grade == "1.3"
    assert result.percentile is not None
    assert result.percentile.overlaps == ()


# --- comparison and storage ----------------------------------------------------------------


def test_compare_flags_a_difference_of_0_3_or_more_only() -> None:
    nearest = bavarian("14", "20", "10", "nearest")  # 2.7
    truncated = bavarian("14", "20", "10", "truncate")  # 2.8

    close = compare(nearest, truncated)
    assert (close.difference, close.differs) == (Decimal("0.1"), False)
    same = compare(nearest, nearest)
    assert (same.difference, same.differs) == (Decimal("0.0"), False)


def test_compare_with_pass_fail() -> None:
    passed = convert("passed", "passfail", "nearest")

    assert not compare(passed, passed).differs
    mixed = compare(passed, bavarian("4", "5", "1", "nearest"))
    assert mixed.differs
    assert mixed.difference is None


def test_to_dict_is_json_with_decimals_as_strings() -> None:
    result = convert("18", "fr-eff17", "nearest")

    stored = json.loads(json.dumps(result.to_dict()))

    assert stored == {
        "original": "18",
        "scheme": "fr-eff17",
        "method": "bavarian",
        "parameters": {
            "nd": "17",
            "nmax": "20",
            "nmin": "10",
            "effective_nmax": "17",
            "rounding": "nearest",
        },
        "exact": "1",
        "grade": "1.0",
        "explanation": list(result.explanation),
        "percentile": None,
    }


def test_a_percentile_conversion_is_stored_with_its_tables_and_bands() -> None:
    stored = json.loads(json.dumps(percentile("C", PARTNER_0612, HOME).to_dict()))

    assert stored["parameters"]["partner_table"]["F"] == "0.8"
    assert stored["parameters"]["home_table"]["2.0"] == "15"
    assert stored["percentile"]["by_midpoint"] == "2.0"
    assert Decimal(stored["percentile"]["midpoint"]).quantize(TENTH) == Decimal("30.3")
    both = compare(percentile("C", PARTNER_0612, HOME), convert("C", "ects", "nearest"))
    assert json.loads(json.dumps(both.to_dict()))["differs"] is True


def test_a_conversion_cannot_be_changed() -> None:
    result = bavarian("4", "5", "1", "nearest")

    with pytest.raises(dataclasses.FrozenInstanceError):
        result.grade = "1.0"  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.parameters["rounding"] = "truncate"  # type: ignore[index]


# --- properties ----------------------------------------------------------------------------

scale_ends = st.decimals(min_value=-1000, max_value=1000, places=2)


@st.composite
def scales(draw: st.DrawFn) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """A scale (best, lowest pass) running either way and two grades on it."""
    best = draw(scale_ends)
    lowest = draw(scale_ends.filter(lambda value: value != best))
    low, high = min(best, lowest), max(best, lowest)
    on_scale = st.decimals(min_value=low, max_value=high, places=2)
    return best, lowest, draw(on_scale), draw(on_scale)


def oracle(nd: Decimal, best: Decimal, lowest: Decimal) -> Decimal:
    """The nearest step by exact fractions, ties to the better grade: a second opinion."""
    x = 1 + 3 * (Fraction(best) - Fraction(nd)) / (Fraction(best) - Fraction(lowest))
    return min(GERMAN_STEPS, key=lambda step: (abs(x - Fraction(step)), step))


@settings(database=None, max_examples=300)
@given(scales())
def test_nearest_is_always_the_closest_german_step(
    scale: tuple[Decimal, Decimal, Decimal, Decimal],
) -> None:
    best, lowest, nd, _ = scale

    result = bavarian(nd, best, lowest, "nearest")

    assert Decimal(result.grade) in GERMAN_STEPS
    assert Decimal("1.0") <= Decimal(result.grade) <= Decimal("4.0")
    assert Decimal(result.grade) == oracle(nd, best, lowest)


@settings(database=None, max_examples=300)
@given(scales(), st.sampled_from(["nearest", "truncate"]))
def test_a_better_foreign_grade_never_gives_a_worse_german_grade(
    scale: tuple[Decimal, Decimal, Decimal, Decimal], rounding: Rounding
) -> None:
    best, lowest, first, second = scale
    better, worse = (first, second) if abs(best - first) <= abs(best - second) else (second, first)

    assert Decimal(bavarian(better, best, lowest, rounding).grade) <= Decimal(
        bavarian(worse, best, lowest, rounding).grade
    )


@settings(database=None, max_examples=200)
@given(scales())
def test_truncation_cuts_the_exact_value_to_one_decimal(
    scale: tuple[Decimal, Decimal, Decimal, Decimal],
) -> None:
    best, lowest, nd, _ = scale

    result: Conversion = bavarian(nd, best, lowest, "truncate")

    x = 1 + 3 * (Fraction(best) - Fraction(nd)) / (Fraction(best) - Fraction(lowest))
    grade = Fraction(Decimal(result.grade))
    assert Decimal("1.0") <= Decimal(result.grade) <= Decimal("4.0")
    assert grade <= x < grade + Fraction(1, 10)
