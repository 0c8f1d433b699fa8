"""The conversation index's pure rules: a run's status, titles, metadata, search patterns,
paging limits and which text a run re-indexes. No database: statements are only built."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.errors import GraphDrained
from langgraph.types import Interrupt, StateSnapshot

from checkpointing import index_sql as sql
from checkpointing.conversation import (
    TITLE_CHARS,
    Conversation,
    conversation_from_row,
    metadata_json,
    new_title,
    title_of,
)
from checkpointing.errors import InvalidIdentifier
from checkpointing.index_sql import MAX_PAGE, _like, list_statement
from checkpointing.run_record import (
    TrackedRun,
    error_text,
    record_statements,
    status_of,
    summary,
)

WHEN = datetime(2026, 1, 2, tzinfo=UTC)


def _snapshot(values: Any = None, next: tuple[str, ...] = (), interrupts: tuple = ()):
    return StateSnapshot(
        values=values or {}, next=next, config={}, metadata=None, created_at=None,
        parent_config=None, tasks=(), interrupts=interrupts,
    )  # fmt: skip


# -- the status a run leaves -------------------------------------------------------------------


def test_a_run_that_raised_failed_even_mid_question():
    asking = _snapshot(next=("tools",), interrupts=(Interrupt("q", id="q"),))
    assert status_of(asking, RuntimeError("boom")) == "failed"


def test_a_question_waits():
    assert status_of(_snapshot(next=("tools",), interrupts=(Interrupt("q", id="q"),))) == "waiting"


@pytest.mark.parametrize("exc", [None, GraphDrained("paused"), KeyboardInterrupt()])
def test_a_run_stopped_with_steps_left_is_paused_and_one_without_is_done(exc):
    assert status_of(_snapshot(next=("agent",)), exc) == "paused"
    assert status_of(_snapshot(), exc) == "done"


def test_the_stored_error_is_one_line_with_secrets_scrubbed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abcdefghijklmnopqrstuvwx")
    text = error_text(RuntimeError("bad key sk-abcdefghijklmnopqrstuvwx\nsecond line"))
    assert text == "RuntimeError: bad key ***"
    assert "second line" not in text
    assert error_text(GraphDrained("x")) == "" == error_text(None)
    assert len(error_text(ValueError("x" * 2000))) == 500


# -- titles and metadata -----------------------------------------------------------------------


def test_a_title_is_one_line_of_storable_text():
    assert title_of("  what   is\n12*7?\t") == "what is 12*7?"
    assert title_of("a\x00b") == "a\ufffdb"


def test_a_long_title_is_cut_with_an_ellipsis():
    title = title_of("word " * 100)
    assert len(title) == TITLE_CHARS
    assert title.endswith("…")
    assert title_of("x" * TITLE_CHARS) == "x" * TITLE_CHARS


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_a_blank_rename_is_refused(blank):
    with pytest.raises(InvalidIdentifier, match="title cannot be blank"):
        new_title(blank)


def test_metadata_is_stored_as_sorted_plain_json():
    assert metadata_json({"b": 1, "a": [True, None]}) == '{"a": [true, null], "b": 1}'
    assert metadata_json(None) == "{}"
    for bad in ({"when": WHEN}, {"x": float("nan")}):
        with pytest.raises(InvalidIdentifier, match="plain JSON"):
            metadata_json(bad)


def test_a_row_reads_back_as_a_conversation_and_plain_json():
    row = {
        "thread_id": "T1", "user_id": "alice", "title": "hi", "status": "done",
        "created_at": WHEN.timestamp(), "updated_at": WHEN.timestamp() + 60,
        "message_count": 4, "tool_calls": 1, "input_tokens": 10, "output_tokens": 5,
        "metadata": '{"tag": "x"}', "attempts": 2, "last_error": "",
    }  # fmt: skip
    conversation = conversation_from_row(row)
    assert conversation.created_at == WHEN
    assert conversation.metadata == {"tag": "x"}
    assert conversation.config == {"configurable": {"thread_id": "T1", "user_id": "alice"}}
    data = json.loads(json.dumps(conversation.as_dict()))
    assert data["state"] == "done"
    assert "status" not in data
    assert data["updated_at"] == "2026-01-02T00:01:00+00:00"


# -- listing -----------------------------------------------------------------------------------


def test_search_text_is_matched_literally_and_case_folded():
    assert _like("50%_Off!") == "%50!%!_off!!%"
    assert _like("STRASSE") == _like("strasse")


def test_a_listing_checks_its_status_and_page():
    with pytest.raises(InvalidIdentifier, match="unknown status 'interrupted'"):
        list_statement("alice", "interrupted", None, 20, 0)
    for limit, offset in ((0, 0), (MAX_PAGE + 1, 0), (20, -1)):
        with pytest.raises(InvalidIdentifier, match=f"limit of 1 to {MAX_PAGE}"):
            list_statement("alice", None, None, limit, offset)
    with pytest.raises(InvalidIdentifier, match="invalid user ID"):
        list_statement("../alice", None, None, 20, 0)


def test_a_crashed_filter_reads_every_running_row_then_pages():
    statement, params = list_statement("alice", "crashed", "tea", 5, 10)
    assert statement == sql.LIST
    assert params[:3] == ("alice", "running", "running")
    assert params[-1] == 0
    assert params[-2] > MAX_PAGE
    assert list_statement("alice", "done", None, 5, 10)[1][-2:] == (5, 10)


# -- what a run records ------------------------------------------------------------------------


def test_counts_cover_messages_tool_calls_and_tokens():
    usage = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    messages = [
        HumanMessage("q"),
        AIMessage(
            "", tool_calls=[{"name": "calculator", "args": {}, "id": "c"}], usage_metadata=usage
        ),
        ToolMessage("84", tool_call_id="c"),
        AIMessage("84", usage_metadata=usage),
    ]
    assert summary(messages) == {
        "message_count": 4, "tool_calls": 1, "input_tokens": 14, "output_tokens": 6,
    }  # fmt: skip


def _recorded(indexed: tuple[int, str], messages: list[Any]) -> list[tuple[str, Any]]:
    conversation = Conversation("T1", "alice", "", "running", WHEN, WHEN)
    run = TrackedRun(conversation, indexed)
    return list(record_statements(run, _snapshot({"messages": messages}), None, "messages"))


def _indexed_seqs(statements: list[tuple[str, Any]]) -> list[int]:
    return [params[1] for statement, params in statements if statement == sql.UPSERT_TEXT]


def test_a_run_indexes_only_the_messages_after_those_indexed():
    messages = [HumanMessage(f"m{i}", id=f"id{i}") for i in range(5)]
    statements = _recorded((3, "id2"), messages)
    assert _indexed_seqs(statements) == [3, 4]
    assert statements[0] == (sql.TRIM_TEXT, ("T1", 5))
    record = statements[-1]
    assert record[0] == sql.RECORD_RUN
    assert record[1][0] == "done"
    assert record[1][-4:-2] == ("m0", "m0")  # the first human message titles it


def test_a_forked_history_is_indexed_again_from_the_start():
    messages = [HumanMessage(f"m{i}", id=f"id{i}") for i in range(5)]
    assert _indexed_seqs(_recorded((3, "elsewhere"), messages)) == [0, 1, 2, 3, 4]
    assert _indexed_seqs(_recorded((9, "id8"), messages)) == [0, 1, 2, 3, 4]


def test_indexed_text_is_case_folded_and_storable():
    statements = _recorded((0, ""), [HumanMessage("Straße \x00")])
    [(_, (_, _, folded))] = [s for s in statements if s[0] == sql.UPSERT_TEXT]
    assert folded == "strasse \ufffd"
