"""Prompt tokens per turn with the context window and without it, at turns 10, 100 and 300.

The same conversation (a tool call every fifth turn, sentences of a few dozen words each
way) runs twice against the local OpenAI-compatible test server (``tests/openai_server.py``,
real HTTP through ``ChatOpenAI``), on ``memory://``: once with a budget of ``--budget``
tokens, once with an unlimited one (10,000,000: the whole history every call, as before
the window). For each turn it reads, from the requests the server received, the prompt
tokens of the turn's model calls (two on a tool-call turn) and of its summary calls,
counted as the server counts them for its context limit (the estimate
``graphs/token_count.py`` documents).
Usage: ``python bench/window.py [--budget 4000] [--turns 300]``.

Measured on the project's shared 2-core machine (``.venv/bin/python bench/window.py``;
the last line wrapped here)::

    budget 4000 tokens, 300 turns (a tool call every 5th turn)
    turn    without window   with window (model + summary)   ratio without/with
      10              1274                 1274 (1274 + 0)                 1.00
     100              9704                 3052 (3052 + 0)                 3.18
     300             28520                 2684 (2684 + 0)                10.63
    sent over all 300 turns: 5,196,795 without, 915,909 with (x5.67); largest prompt
    28,520 without, 3,087 with; 23 turns with summary calls

At turn 10 the whole conversation still fits, so both send the same; after that the
windowed prompt stays under the budget (it moves between about 60% and 100% of the
window as the summary catches up) while the full one grows with every turn. The summary
calls, 23 in 300 turns, cost their prompts too: they are in the totals.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from checkpointing import Runner, open_conversations
from graphs.agent import compile_agent
from graphs.models import make_model
from graphs.summary import SUMMARY_INSTRUCTIONS
from tests.openai_server import Reply, openai_server, prompt_tokens

UNLIMITED = 10_000_000
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "the",
    "river",
    "runs",
    "past",
    "an",
    "old",
    "mill",
]
MARKS = (10, 100, 300)


def _sentence(n: int, words: int) -> str:
    return " ".join(WORDS[(n + i) % len(WORDS)] for i in range(words))


def _answer(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    if messages[0]["content"] == SUMMARY_INSTRUCTIONS:
        return Reply(text="The user and the assistant talked about " + _sentence(len(messages), 60))
    last = messages[-1]
    if last["role"] == "tool":
        return Reply(text=f"The result is {last['content']}. " + _sentence(3, 30))
    n = int(re.match(r"turn (\d+)", last["content"])[1])  # type: ignore[index]
    if n % 5 == 0:
        return Reply(tool="calculator", arguments={"expression": f"{n}*2"})
    return Reply(text=_sentence(n, 40))


def run(budget: int, turns: int) -> list[tuple[int, int, int]]:
    """(model tokens, summary tokens, largest prompt) sent for each turn, with *budget*."""
    per_turn: list[tuple[int, int, int]] = []
    with openai_server(_answer) as server:
        os.environ.update(
            OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=server.url,
            DURABLE_AGENT_MODEL="test-model",
        )  # fmt: skip
        with open_conversations("memory://") as conversations:
            agent = compile_agent(conversations.saver, make_model(), budget=budget)
            runner = Runner(conversations, agent)
            thread_id = conversations.start("bench").thread_id
            for n in range(turns):
                seen = len(server.requests)
                text = f"turn {n}: {_sentence(n, 30)}"
                for _ in runner.stream(conversations.get(thread_id, "bench"),
                                       {"messages": [HumanMessage(text)]}):  # fmt: skip
                    pass
                new = server.requests[seen:]
                summary = [b for b in new if b["messages"][0]["content"] == SUMMARY_INSTRUCTIONS]
                model = [b for b in new if b not in summary]
                sizes = [prompt_tokens(b) for b in model]
                per_turn.append((sum(sizes), sum(map(prompt_tokens, summary)), max(sizes)))
    return per_turn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=4000)
    parser.add_argument("--turns", type=int, default=300)
    args = parser.parse_args()
    without = run(UNLIMITED, args.turns)
    with_window = run(args.budget, args.turns)
    print(f"budget {args.budget} tokens, {args.turns} turns (a tool call every 5th turn)")
    print(f"{'turn':>4}  {'without window':>16}  {'with window (model + summary)':>30}  "
          f"{'ratio without/with':>19}")  # fmt: skip
    for mark in (m for m in MARKS if m <= args.turns):
        plain = without[mark - 1][0]
        model, summary, _ = with_window[mark - 1]
        shown = f"{model + summary} ({model} + {summary})"
        print(f"{mark:>4}  {plain:>16}  {shown:>30}  {plain / (model + summary):>19.2f}")
    total_without = sum(model + summary for model, summary, _ in without)
    total_with = sum(model + summary for model, summary, _ in with_window)
    print(
        f"sent over all {args.turns} turns: {total_without:,} without, {total_with:,} with "
        f"(x{total_without / total_with:.2f}); largest prompt "
        f"{max(t[2] for t in without):,} without, {max(t[2] for t in with_window):,} with; "
        f"{sum(1 for t in with_window if t[1])} turns with summary calls"
    )


if __name__ == "__main__":
    main()
