"""The offline model's planner: which tool it calls for a message, and what it answers after."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from graphs.offline import HELP, PREFIX, OfflineChatModel, plan_tool_call, respond


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("what is 12*7?", "12*7"),
        ("what is 3 times 4", "3 * 4"),
        ("3 x 4", "3*4"),
        ("12 divided by 4 plus 1", "12 / 4 + 1"),
        ("7 minus 2", "7 - 2"),
        ("2 to the power of 10", "2 ^ 10"),
        ("and sqrt(16)?", "sqrt(16)"),
    ],
)
def test_arithmetic_asks_the_calculator(text, expression):
    assert plan_tool_call(text) == ("calculator", {"expression": expression})


@pytest.mark.parametrize(
    ("text", "coefficients"),
    [
        ("solve x^2 - 5x + 6 = 0", (1, -5, 6)),
        ("2x^2 - 4x + 2 = 0", (2, -4, 2)),
        ("x² + 1 = 0", (1, 0, 1)),
        ("x**2 - 1 = 0", (1, 0, -1)),
        ("-x^2 + 1 = 0", (-1, 0, 1)),
        ("2 - 3x^2 = 0", (-3, 0, 2)),
        ("solve x^2 + 3x = 5", (1, 3, -5)),  # the right-hand side moves over
        ("x^2 = 4", (1, 0, -4)),
        ("solve with a=1 b=-5 c=6", (1, -5, 6)),
    ],
)
def test_a_quadratic_asks_the_solver(text, coefficients):
    name, args = plan_tool_call(text) or ("", {})
    assert name == "solve_quadratic"
    assert (args["a"], args["b"], args["c"]) == coefficients


@pytest.mark.parametrize("text", ["x^2 - x^2 = 5", "solve x^2 - x^2 + x = 0"])
def test_an_equation_whose_square_cancels_is_not_sent_to_the_solver(text):
    assert plan_tool_call(text) is None


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("what time is it in Europe/Paris?", "Europe/Paris"),
        ("what's the date in America/New_York", "America/New_York"),
        ("what time is it?", "UTC"),
    ],
)
def test_a_question_about_time_asks_the_clock(text, zone):
    assert plan_tool_call(text) == ("current_time", {"timezone": zone})


def test_a_time_question_wins_over_numbers_in_it():
    assert plan_tool_call("what is 12*7 and the time in UTC")[0] == "current_time"  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ("remember that my favourite colour is green.", "my favourite colour is green"),
        ("Please remember I take 2 sugars!", "I take 2 sugars"),
    ],
)
def test_remember_asks_to_save_the_fact(text, fact):
    assert plan_tool_call(text) == ("remember", {"fact": fact})


@pytest.mark.parametrize("text", ["what do you remember?", "recall", "what do you know about me"])
def test_recall_questions_ask_for_the_facts(text):
    assert plan_tool_call(text) == ("recall", {})


@pytest.mark.parametrize("text", ["hello", "what is 12?", "", "tell me a story"])
def test_anything_else_plans_no_tool(text):
    assert plan_tool_call(text) is None


# -- whole histories ---------------------------------------------------------------------------


def _call(name: str, args: dict, call_id: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


def test_a_question_gets_a_tool_call_numbered_by_the_turn():
    first = respond([HumanMessage("what is 12*7?")])
    assert first.content == ""
    assert [(c["name"], c["args"], c["id"]) for c in first.tool_calls] == [
        ("calculator", {"expression": "12*7"}, "offline_1")
    ]
    history = [HumanMessage("hi"), AIMessage("hello"), HumanMessage("what is 2+2")]
    assert respond(history).tool_calls[0]["id"] == "offline_2"


def test_the_tools_answer_becomes_the_reply():
    history = [HumanMessage("what is 12*7?"), _call("calculator", {"expression": "12*7"}, "c1")]
    reply = respond([*history, ToolMessage("84", tool_call_id="c1")])
    assert reply.content == f"{PREFIX} 12*7 = 84."
    assert not reply.tool_calls


def test_a_failed_tool_is_reported_not_hidden():
    history = [HumanMessage("1/0"), _call("calculator", {"expression": "1/0"}, "c1")]
    failed = ToolMessage("division by zero", tool_call_id="c1", status="error")
    assert respond([*history, failed]).content == (
        f"{PREFIX} the calculator tool could not answer 1/0: division by zero."
    )


def test_the_solver_reply_restates_the_equation():
    args = {"a": 1.0, "b": -5.0, "c": 6.0}
    history = [HumanMessage("q"), _call("solve_quadratic", args, "s1")]
    reply = respond([*history, ToolMessage("two real roots: x = 3 and x = 2", tool_call_id="s1")])
    assert reply.content == f"{PREFIX} x^2 - 5x + 6 = 0: two real roots: x = 3 and x = 2."


def test_the_clock_and_memory_replies():
    clock = [HumanMessage("q"), _call("current_time", {"timezone": "UTC"}, "t1")]
    assert respond(
        [*clock, ToolMessage("2026-01-01T00:00:00+00:00", tool_call_id="t1")]
    ).content == (f"{PREFIX} the time in UTC: 2026-01-01T00:00:00+00:00.")
    memory = [HumanMessage("q"), _call("remember", {"fact": "tea"}, "m1")]
    reply = respond([*memory, ToolMessage("remembered: tea", tool_call_id="m1")])
    assert reply.content == f"{PREFIX} remembered: tea."


def test_several_tool_results_are_answered_together():
    asked = AIMessage("", tool_calls=[
        {"name": "calculator", "args": {"expression": "1+1"}, "id": "a"},
        {"name": "calculator", "args": {"expression": "2*3"}, "id": "b"},
    ])  # fmt: skip
    results = [ToolMessage("2", tool_call_id="a"), ToolMessage("6", tool_call_id="b")]
    assert respond([HumanMessage("q"), asked, *results]).content == f"{PREFIX} 1+1 = 2; 2*3 = 6."


@pytest.mark.parametrize(
    "history", [[], [HumanMessage("hello")], [SystemMessage("be nice")], [AIMessage("hi")]]
)
def test_without_a_plan_it_says_what_it_is(history):
    assert respond(history).content == HELP
    assert HELP.startswith(PREFIX)


def test_the_chat_model_answers_like_respond_and_ignores_tool_binding():
    model = OfflineChatModel()
    assert model.bind_tools([]) is model
    reply = model.invoke([HumanMessage("what is 12*7?")])
    assert reply.tool_calls[0]["args"] == {"expression": "12*7"}
