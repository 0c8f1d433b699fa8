"""Thread-state decisions, from hand-built snapshots and checkpoints: no database, no graph run."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.types import Command, Interrupt, StateSnapshot

from checkpointing.conversation import Conversation
from checkpointing.errors import InvalidText, NothingToResume, ThreadBusy
from checkpointing.states import DIED, STATES, STORED, state_of
from checkpointing.thread_state import (
    NO_ANSWER,
    ThreadState,
    check_graph_has,
    given_up,
    pending_nodes,
    refuse_new_input,
    resume_input,
    thread_state,
)

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
QUESTION = Interrupt(value={"question": "May I?"}, id="q1")
OTHER = Interrupt(value="and this?", id="q2")


def _conversation(status: str = "idle", **fields: Any) -> Conversation:
    return Conversation("T1", "alice", "a title", status, WHEN, WHEN, **fields)


def _snapshot(
    *, next: tuple[str, ...] = (), interrupts: tuple[Interrupt, ...] = (), checkpoint_id: str = ""
) -> StateSnapshot:
    configurable = {"thread_id": "T1", "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return StateSnapshot(
        values={}, next=next, config={"configurable": configurable}, metadata=None,
        created_at=None, parent_config=None, tasks=(), interrupts=interrupts,
    )  # fmt: skip


def _thread(state: str, waiting_for: tuple[Interrupt, ...] = (), next: tuple[str, ...] = ()):
    return ThreadState(_conversation(state), state, waiting_for, next, "cp-1")


# -- the state a thread is in ------------------------------------------------------------------


@pytest.mark.parametrize("status", [*STORED, "crashed"])
def test_a_taken_lease_means_running_whatever_the_index_says(status):
    assert state_of(status, lease_free=False) == "running"


@pytest.mark.parametrize("status", ["running", "crashed"])
def test_running_with_a_free_lease_is_crashed(status):
    assert state_of(status, lease_free=True) == "crashed"


@pytest.mark.parametrize("status", ["idle", "waiting", "paused", "failed", "done"])
def test_other_stored_states_stand_when_the_lease_is_free(status):
    assert state_of(status, lease_free=True) == status


def test_every_state_is_one_a_thread_can_reach():
    reached = {state_of(s, free) for s in STORED for free in (True, False)}
    assert reached == set(STATES)


def test_thread_state_gathers_questions_next_steps_and_checkpoint():
    snapshot = _snapshot(next=("tools",), interrupts=(QUESTION,), checkpoint_id="cp-9")
    thread = thread_state(_conversation("waiting"), True, snapshot)
    assert (thread.state, thread.waiting_for, thread.next) == ("waiting", (QUESTION,), ("tools",))
    assert thread.checkpoint_id == "cp-9"
    assert thread.thread_id == "T1"


def test_thread_state_without_a_checkpoint_has_no_checkpoint_id():
    thread = thread_state(_conversation("running"), False, _snapshot())
    assert (thread.state, thread.checkpoint_id, thread.next) == ("running", "", ())


def test_as_dict_is_plain_json_with_the_conversations_fields():
    thread = ThreadState(_conversation("waiting"), "waiting", (QUESTION,), ("tools",))
    data = thread.as_dict()
    assert data["state"] == "waiting"
    assert data["next"] == ["tools"]
    assert data["waiting_for"] == [{"id": "q1", "value": {"question": "May I?"}}]
    assert data["thread_id"] == "T1"
    assert data["created_at"] == WHEN.isoformat()


# -- what a resume sends -----------------------------------------------------------------------


def test_a_running_thread_is_busy():
    with pytest.raises(ThreadBusy, match="running in another process"):
        resume_input(_thread("running"), NO_ANSWER, None)


@pytest.mark.parametrize("state", ["done", "idle"])
def test_a_finished_or_idle_thread_has_nothing_to_resume(state):
    with pytest.raises(NothingToResume, match=rf"nothing to resume \({state}\).*chat --user alice"):
        resume_input(_thread(state), NO_ANSWER, None)


@pytest.mark.parametrize("state", ["crashed", "paused", "failed"])
def test_a_cut_off_thread_continues_from_its_checkpoint(state):
    assert resume_input(_thread(state, next=("agent",)), NO_ANSWER, None) is None


@pytest.mark.parametrize("state", ["crashed", "paused", "failed"])
def test_an_answer_to_a_thread_that_asks_nothing_is_refused(state):
    with pytest.raises(NothingToResume, match="is not waiting for an answer"):
        resume_input(_thread(state), "yes", None)
    with pytest.raises(NothingToResume, match="is not waiting for an answer"):
        resume_input(_thread(state), NO_ANSWER, {"q1": "yes"})


def test_a_waiting_thread_needs_an_answer():
    with pytest.raises(NothingToResume, match=r"waiting for an answer.*--approve"):
        resume_input(_thread("waiting", (QUESTION,)), NO_ANSWER, None)


def test_one_question_gets_the_bare_answer_so_a_crash_keeps_it():
    command = resume_input(_thread("waiting", (QUESTION,)), {"action": "approve"}, None)
    assert isinstance(command, Command)
    assert command.resume == {"action": "approve"}


def test_one_answer_goes_to_every_question():
    command = resume_input(_thread("waiting", (QUESTION, OTHER)), "yes", None)
    assert command is not None
    assert command.resume == {"q1": "yes", "q2": "yes"}


def test_answers_by_id_for_one_question_send_its_answer_bare():
    command = resume_input(_thread("waiting", (QUESTION,)), NO_ANSWER, {"q1": "no"})
    assert command is not None
    assert command.resume == "no"


def test_answers_by_id_for_several_questions_send_the_map():
    command = resume_input(_thread("waiting", (QUESTION, OTHER)), NO_ANSWER, {"q1": 1, "q2": 2})
    assert command is not None
    assert command.resume == {"q1": 1, "q2": 2}


def test_an_answer_to_a_question_not_asked_is_refused():
    with pytest.raises(NothingToResume, match=r"no question \['q9'\] pending"):
        resume_input(_thread("waiting", (QUESTION,)), NO_ANSWER, {"q1": "y", "q9": "n"})


def test_an_answer_no_database_can_store_is_refused_first():
    with pytest.raises(InvalidText):
        resume_input(_thread("running"), "bad \udc80 text", None)  # before "busy"


# -- new input ---------------------------------------------------------------------------------


def test_new_input_waits_until_the_question_is_answered():
    with pytest.raises(NothingToResume, match="waiting for an answer"):
        refuse_new_input(_thread("waiting", (QUESTION,), ("tools",)))


def test_new_input_waits_until_the_steps_left_have_run():
    with pytest.raises(NothingToResume, match=r"stopped mid-run.*next step: tools"):
        refuse_new_input(_thread("crashed", next=("tools",)))


@pytest.mark.parametrize("state", ["done", "idle", "failed"])
def test_new_input_goes_ahead_with_nothing_left(state):
    refuse_new_input(_thread(state))


def test_a_thread_given_up_names_its_error_and_the_retry():
    thread = ThreadState(_conversation("failed", last_error="Boom: it broke"), "failed")
    message = str(given_up(thread, 3))
    assert "3 attempts" in message
    assert "Boom: it broke" in message
    assert "--retry" in message
    assert DIED in str(given_up(_thread("crashed"), 3))


# -- pending steps read from a checkpoint ------------------------------------------------------


def _checkpoint(values: dict[str, Any], versions: dict[str, str], seen: dict[str, Any]):
    return {"channel_values": values, "channel_versions": versions, "versions_seen": seen}


def test_a_triggered_branch_not_yet_run_is_pending():
    # As LangGraph leaves it stopped before "b": its trigger is live and newer than b has seen.
    checkpoint = _checkpoint(
        {"branch:to:b": None, "x": 2},
        {"branch:to:a": "3.0", "branch:to:b": "3.0", "x": "3.0"},
        {"a": {"branch:to:a": "2.0"}},
    )
    assert pending_nodes(checkpoint) == {"b"}


def test_a_branch_already_run_is_not_pending():
    checkpoint = _checkpoint(
        {"branch:to:b": None}, {"branch:to:b": "3.0"}, {"b": {"branch:to:b": "3.0"}}
    )
    assert pending_nodes(checkpoint) == set()


def test_an_emptied_trigger_is_not_pending():
    checkpoint = _checkpoint({"x": 4}, {"branch:to:b": "4.0", "x": "4.0"}, {})
    assert pending_nodes(checkpoint) == set()


def test_a_join_barrier_is_pending_until_reset():
    live = _checkpoint({"join:a+b:c": {"a"}}, {"join:a+b:c": "5.0"}, {})
    reset = _checkpoint({"join:a+b:c": set()}, {"join:a+b:c": "6.0"}, {})
    assert pending_nodes(live) == {"c"}
    assert pending_nodes(reset) == set()


def test_other_channels_never_make_a_node_pending():
    assert pending_nodes(_checkpoint({"messages": [1]}, {"messages": "9.0"}, {})) == set()
    assert pending_nodes({}) == set()


def _found(checkpoint: dict[str, Any]) -> CheckpointTuple:
    return CheckpointTuple({"configurable": {"thread_id": "T1"}}, checkpoint, {}, None, [])  # type: ignore[arg-type]


def test_a_graph_without_the_pending_step_is_refused():
    found = _found(_checkpoint({"branch:to:gone": None}, {"branch:to:gone": "2.0"}, {}))
    graph = SimpleNamespace(nodes={"agent": object(), "tools": object()})
    with pytest.raises(NothingToResume, match="before step gone, which this graph does not have"):
        check_graph_has("T1", found, graph)


def test_a_graph_with_the_pending_step_or_no_checkpoint_goes_ahead():
    found = _found(_checkpoint({"branch:to:tools": None}, {"branch:to:tools": "2.0"}, {}))
    graph = SimpleNamespace(nodes={"agent": object(), "tools": object()})
    check_graph_has("T1", found, graph)
    check_graph_has("T1", None, graph)
