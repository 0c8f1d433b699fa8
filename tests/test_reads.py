"""What a read hands out: fresh objects the caller may change, revived the same way from
the cache and from disk, with every type the saver or the graph allows, on both backends."""

import operator
import subprocess
import sys
import textwrap
from typing import Annotated, Any, TypedDict

from langchain_core.agents import AgentAction
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import MessagesState
from langgraph.graph.message import add_messages

from checkpointing import new_thread_id, open_saver
from tests.helpers import one_node, rows_for

RETURNED: list[AIMessage] = []


def _answer(state: MessagesState) -> dict[str, list[AIMessage]]:
    message = AIMessage(
        f"answer {len(state['messages'])}",
        tool_calls=[{"name": "calc", "args": {"expression": "1+1"}, "id": "call-1"}],
    )
    RETURNED.append(message)
    return {"messages": [message]}


def _chat(saver: Any) -> Any:
    return one_node(MessagesState, _answer).compile(checkpointer=saver)


def test_a_read_is_the_callers_to_change(db_url):
    config = {"configurable": {"thread_id": new_thread_id()}}
    with open_saver(db_url) as saver:
        graph = _chat(saver)
        graph.invoke({"messages": [HumanMessage("hi", id="h1")]}, config)
        first = graph.get_state(config).values["messages"]
        assert first[-1] is not RETURNED[-1]  # not the node's own object
        first[-1].content = "changed by the caller"
        first[-1].tool_calls[0]["args"]["expression"] = "6*7"
        first.append(HumanMessage("appended by the caller"))
        again = graph.get_state(config).values["messages"]
        assert [m.content for m in again] == ["hi", "answer 1"]
        assert again[-1].tool_calls[0]["args"] == {"expression": "1+1"}
        assert RETURNED[-1].content == "answer 1"
        history = graph.get_state_history(config)
        assert "changed by the caller" not in [
            m.content for s in history for m in s.values.get("messages", [])
        ]


def test_an_edited_message_passed_back_to_update_state_is_stored_edited(db_url):
    # LangGraph's documented way to edit a tool call before it runs.
    config = {"configurable": {"thread_id": new_thread_id()}}
    with open_saver(db_url) as saver:
        graph = _chat(saver)
        graph.invoke({"messages": [HumanMessage("hi", id="h1")]}, config)
        last = graph.get_state(config).values["messages"][-1]
        last.tool_calls[0]["args"] = {"expression": "6*7"}
        graph.update_state(config, {"messages": [last]})
        assert graph.get_state(config).values["messages"][-1].tool_calls[0]["args"] == {
            "expression": "6*7"
        }
    with open_saver(db_url) as saver:  # and so it was stored
        stored = _chat(saver).get_state(config).values["messages"]
        assert stored[-1].tool_calls[0]["args"] == {"expression": "6*7"}
        assert len(stored) == 2


class Notes(TypedDict):
    messages: Annotated[list[Any], add_messages]
    things: Annotated[list[Any], operator.add]


def _keep(state: Notes) -> dict[str, Any]:
    return {
        "things": [
            AgentAction("calc", {"expression": "1+1"}, "thinking"),
            Document("a page", metadata={"source": "x"}),
        ]
    }


def test_langchains_own_data_types_come_back_as_themselves(db_url):
    builder = one_node(Notes, _keep)
    config = {"configurable": {"thread_id": new_thread_id()}}
    with open_saver(db_url) as saver:
        graph = builder.compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("hi")], "things": []}, config)
        fresh = graph.get_state(config).values["things"]
    with open_saver(db_url) as saver:
        reopened = builder.compile(checkpointer=saver).get_state(config).values["things"]
    for things in (fresh, reopened):
        assert [type(t) for t in things] == [AgentAction, Document]
        assert things[0].tool_input == {"expression": "1+1"}


STRICT_CHILD = textwrap.dedent(
    """
    import operator, sys
    from typing import Annotated, TypedDict
    from pydantic import BaseModel
    from langgraph.graph import END, START, StateGraph
    from checkpointing import open_saver

    class Point(BaseModel):
        x: int

    class State(TypedDict):
        points: Annotated[list[Point], operator.add]

    def grow(state):
        return {"points": [Point(x=i) for i in range(10)]}

    builder = StateGraph(State)
    builder.add_node("grow", grow)
    builder.add_edge(START, "grow")
    builder.add_edge("grow", END)
    config = {"configurable": {"thread_id": sys.argv[2]}}
    with open_saver(sys.argv[1]) as saver:
        graph = builder.compile(checkpointer=saver)
        if sys.argv[3] == "write":
            graph.invoke({"points": []}, config)
        points = graph.get_state(config).values["points"]
        print(sorted({type(p).__name__ for p in points}), len(points))
    """
)


def test_strict_mode_allow_list_reaches_stored_items_from_cache_and_disk(db_url, tmp_path):
    # LANGGRAPH_STRICT_MSGPACK is read at import: compile() hands the saver an allow-list
    # derived from the state schema. A list of 8+ objects is stored as items.
    child = tmp_path / "strict_child.py"
    child.write_text(STRICT_CHILD)
    thread_id = new_thread_id()

    def run(mode: str) -> str:
        done = subprocess.run(
            [sys.executable, str(child), db_url, thread_id, mode],
            env={"LANGGRAPH_STRICT_MSGPACK": "true", "PATH": "/usr/bin:/bin"},
            cwd=str(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run("write") == "['Point'] 10"  # read from this process's cache
    assert run("read") == "['Point'] 10"  # read from disk in another process


def test_an_edited_result_of_invoke_passed_back_to_update_state_is_stored_edited(db_url):
    config = {"configurable": {"thread_id": new_thread_id()}}
    with open_saver(db_url) as saver:
        graph = _chat(saver)
        answer = graph.invoke({"messages": [HumanMessage("hi", id="h1")]}, config)["messages"][-1]
        answer.content = "edited after the run"
        graph.update_state(config, {"messages": [answer]})
    with open_saver(db_url) as saver:
        stored = _chat(saver).get_state(config).values["messages"]
    assert [m.content for m in stored] == ["hi", "edited after the run"]


def test_reads_during_a_run_do_not_store_its_messages_again(db_url):
    # A server shows a thread while it runs: reads between the run's own read and its
    # writes must not make the run store the history again.
    config = {"configurable": {"thread_id": new_thread_id()}}
    with open_saver(db_url) as saver:
        graph: Any = None

        def answer(state: MessagesState) -> dict[str, list[AIMessage]]:
            graph.get_state(config)  # another reader, mid-run
            return {"messages": [AIMessage(f"answer {len(state['messages'])}")]}

        graph = one_node(MessagesState, answer).compile(checkpointer=saver)
        for turn in range(3):
            graph.invoke({"messages": [HumanMessage(f"turn {turn}")]}, config)
        messages = graph.get_state(config).values["messages"]
    assert len(messages) == 6
    assert rows_for(db_url, config["configurable"]["thread_id"])["durable_agent_items"] == 6
