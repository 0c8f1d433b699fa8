"""The agent's tools: a safe calculator, a quadratic solver and the current time.

The calculator walks Python's AST and allows numbers, arithmetic and a short
list of math functions; it never calls ``eval``. A tool that cannot answer
raises ``ToolError``, which the tool node hands back to the model as a tool
message rather than crashing the run.
"""

from __future__ import annotations

import ast
import cmath
import math
import operator
from collections.abc import Callable
from datetime import datetime
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import BaseTool, tool


class ToolError(ValueError):
    """A tool could not answer; the message goes back to the model."""


_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "abs": abs, "round": round, "exp": math.exp, "log": math.log,
    "log10": math.log10, "sin": math.sin, "cos": math.cos, "tan": math.tan,
}  # fmt: skip
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPRESSION = 200
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e100


def evaluate(expression: str) -> float:
    """The value of an arithmetic *expression*; ``ToolError`` for anything else."""
    text = expression.replace("^", "**").replace("×", "*").replace("÷", "/").strip()
    if not text or len(text) > MAX_EXPRESSION:
        raise ToolError(f"give an arithmetic expression of 1 to {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"not an arithmetic expression: {expression!r}") from None
    try:
        return _eval(tree.body)
    except ToolError:
        raise
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except (OverflowError, ValueError, TypeError) as exc:
        raise ToolError(f"cannot compute {expression!r}: {exc}") from None


def _eval(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return cast(float, node.value)  # an int stays exact
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"exponent {right} is too large (limit {MAX_EXPONENT})")
        result = _BINARY[type(node.op)](left, right)
        if isinstance(result, complex) or abs(result) > MAX_MAGNITUDE:
            raise ToolError("the result is not a real number of sensible size")
        return result
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _FUNCTIONS[node.func.id](*(_eval(arg) for arg in node.args))
    raise ToolError(f"unsupported element in expression: {ast.unparse(node)!r}")


def format_number(value: complex | float) -> str:
    if isinstance(value, complex):
        sign = "+" if value.imag >= 0 else "-"
        return f"{format_number(value.real)} {sign} {format_number(abs(value.imag))}i"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '12*7' or 'sqrt(2) + 3^2'."""
    return format_number(evaluate(expression))


@tool
def solve_quadratic(a: float, b: float, c: float) -> str:
    """Solve a*x^2 + b*x + c = 0 and return its roots, real or complex."""
    if a == 0:
        if b == 0:
            raise ToolError("a and b are both zero: this is not an equation in x")
        return f"not quadratic (a = 0); the linear equation has x = {format_number(-c / b)}"
    disc = b * b - 4 * a * c
    if disc == 0:
        return f"one double root: x = {format_number(-b / (2 * a))}"
    root = math.sqrt(disc) if disc > 0 else cmath.sqrt(disc)
    x1, x2 = (-b + root) / (2 * a), (-b - root) / (2 * a)
    kind = "two real roots" if disc > 0 else "two complex roots"
    return f"{kind}: x = {format_number(x1)} and x = {format_number(x2)}"


@tool
def current_time(timezone: str = "UTC") -> str:
    """The current date and time in an IANA time zone such as 'UTC' or 'Europe/Paris'."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(
            f"unknown time zone {timezone!r}; use an IANA name like 'Europe/Paris'"
        ) from None
    return datetime.now(zone).isoformat(timespec="seconds")


BASIC_TOOLS: list[BaseTool] = [calculator, solve_quadratic, current_time]
