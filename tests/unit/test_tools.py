"""The calculator, the quadratic solver and the clock, called as the agent calls them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from graphs.tools import (
    MAX_EXPONENT,
    MAX_EXPRESSION,
    ToolError,
    calculator,
    current_time,
    evaluate,
    format_number,
    solve_quadratic,
)


def calc(expression: str) -> str:
    return calculator.invoke({"expression": expression})


def solve(a: float, b: float, c: float) -> str:
    return solve_quadratic.invoke({"a": a, "b": b, "c": c})


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("12*7", "84"),
        ("7/2", "3.5"),
        ("7//2", "3"),
        ("-3 % 5", "2"),
        ("2^10", "1024"),  # ^ is a power, as people write it
        ("3 × 4 ÷ 2", "6"),
        ("sqrt(16) + abs(-3)", "7"),
        ("round(2.567, 2)", "2.57"),
        ("0.1+0.2", "0.3"),  # shown to ten significant digits
        ("pi", "3.141592654"),
        ("10**100", "1e+100"),  # the largest magnitude allowed
        ("  1 + 1  ", "2"),
    ],
)
def test_arithmetic_gives_its_value(expression, value):
    assert calc(expression) == value


def test_integers_stay_exact():
    assert evaluate("2**62 + 1") == 2**62 + 1


@pytest.mark.parametrize("expression", ["1/0", "5 // 0", "5 % 0"])
def test_division_by_zero_is_a_tool_error(expression):
    with pytest.raises(ToolError, match="division by zero"):
        calc(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "open('/etc/passwd')",
        "(1).real",
        "().__class__",
        "x + 1",
        "'a' * 3",
        "True + 1",
        "[1, 2]",
        "sqrt(x=4)",
        "lambda: 1",
    ],
)
def test_anything_but_arithmetic_is_refused_unrun(expression):
    with pytest.raises(ToolError, match=r"unsupported element|not an arithmetic expression"):
        calc(expression)


@pytest.mark.parametrize("expression", ["9**9**9", "2**1001", "2 ** -1001"])
def test_huge_exponents_are_refused_before_computing(expression):
    with pytest.raises(ToolError, match=f"too large \\(limit {MAX_EXPONENT}\\)"):
        calc(expression)


@pytest.mark.parametrize("expression", ["2**1000", "10**101", "1e308 * 10", "(-8)**(1/3)"])
def test_results_too_big_or_not_real_are_refused(expression):
    with pytest.raises(ToolError, match="not a real number of sensible size"):
        calc(expression)


@pytest.mark.parametrize("expression", ["sqrt(-1)", "log(0)"])
def test_math_errors_name_the_expression(expression):
    with pytest.raises(ToolError, match=re.escape(f"cannot compute {expression!r}")):
        calc(expression)


AT_LIMIT = "1+" * 99 + "10"  # MAX_EXPRESSION characters


@pytest.mark.parametrize("expression", ["", "   ", AT_LIMIT + "0", "1 +"])
def test_empty_overlong_or_broken_expressions_are_refused(expression):
    with pytest.raises(ToolError, match=r"1 to 200 characters|not an arithmetic expression"):
        calc(expression)


def test_an_expression_at_the_length_limit_is_computed():
    assert len(AT_LIMIT) == MAX_EXPRESSION
    assert calc(AT_LIMIT) == "109"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3"),
        (-2.0, "-2"),
        (999_999_999_999_999.0, "999999999999999"),
        (1e15, "1e+15"),
        (1 / 3, "0.3333333333"),
        (complex(1, -2), "1 - 2i"),
        (complex(-1.5, 2), "-1.5 + 2i"),
    ],
)
def test_numbers_are_shown_plainly(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("a", "b", "c", "answer"),
    [
        (1, -5, 6, "two real roots: x = 3 and x = 2"),
        (1, 0, -2, "two real roots: x = 1.414213562 and x = -1.414213562"),
        (2, -4, 2, "one double root: x = 1"),
        (1, 0, 1, "two complex roots: x = 0 + 1i and x = 0 - 1i"),
        (1, 2, 5, "two complex roots: x = -1 + 2i and x = -1 - 2i"),
        (0, 2, -4, "not quadratic (a = 0); the linear equation has x = 2"),
    ],
)
def test_quadratics_are_solved(a, b, c, answer):
    assert solve(a, b, c) == answer


@pytest.mark.parametrize("c", [0, 1])
def test_no_equation_in_x_is_a_tool_error(c):
    with pytest.raises(ToolError, match="a and b are both zero"):
        solve(0, 0, c)


def test_the_clock_answers_in_the_zone_asked_for():
    stamp = datetime.fromisoformat(current_time.invoke({"timezone": "Asia/Kolkata"}))
    assert stamp.utcoffset() == timedelta(hours=5, minutes=30)
    assert datetime.fromisoformat(current_time.invoke({})).utcoffset() == timedelta(0)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", ""])
def test_an_unknown_zone_is_a_tool_error(zone):
    with pytest.raises(ToolError, match="unknown time zone"):
        current_time.invoke({"timezone": zone})
