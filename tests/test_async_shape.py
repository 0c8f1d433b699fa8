"""``open_async_saver`` yields savers shaped like upstream's async savers, so code written
for ``AsyncSqliteSaver`` and ``AsyncPostgresSaver`` runs on them unchanged."""

import asyncio
import inspect

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import MessagesState

from checkpointing import new_thread_id, open_async_saver
from tests.helpers import one_node


def _kind(cls: type, name: str) -> str:
    member = getattr(cls, name, None)
    if inspect.iscoroutinefunction(member):
        return "coroutine"
    if inspect.isasyncgenfunction(member):
        return "async generator"
    return "sync" if callable(member) else "attribute"


def _echo(state: MessagesState) -> dict[str, list[str]]:
    return {"messages": [f"echo {state['messages'][-1].content}"]}


def test_the_async_saver_has_upstreams_async_surface(db_url):
    upstream = AsyncSqliteSaver if db_url.startswith("sqlite") else AsyncPostgresSaver

    async def shape() -> dict[str, tuple[str, str]]:
        async with open_async_saver(db_url) as saver:
            ours = type(saver)
            return {
                name: (_kind(upstream, name), _kind(ours, name))
                for name in dir(upstream)
                if not name.startswith("_") and _kind(upstream, name) != "sync"
            }

    differing = {name: kinds for name, kinds in asyncio.run(shape()).items() if len(set(kinds)) > 1}
    assert differing == {}


def test_code_written_for_upstreams_async_savers_runs_unchanged(db_url):
    builder = one_node(MessagesState, _echo)
    config = {"configurable": {"thread_id": new_thread_id()}}

    async def talk() -> tuple[str, int]:
        async with open_async_saver(db_url) as saver:
            await saver.setup()
            graph = builder.compile(checkpointer=saver)
            await graph.ainvoke({"messages": [HumanMessage("hi")]}, config)
            latest = await saver.aget_tuple(config)
            history = [tup async for tup in saver.alist(config)]
            assert latest is not None
            return latest.checkpoint["channel_values"]["messages"][-1].content, len(history)

    assert asyncio.run(talk()) == ("echo hi", 3)
