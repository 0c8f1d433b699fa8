"""A child that approves a pending ``remember`` and dies right after the fact is stored.

    python -m tests.remember_child URL THREAD_ID USER FLAG_FILE

The store is wrapped so that its first write is followed by SIGKILL (and FLAG_FILE is
created): the worst moment, after the side effect and before the checkpoint.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langgraph.store.base import BaseStore, Op, PutOp, Result

from checkpointing import open_conversations
from checkpointing.runner import Runner
from graphs import compile_agent


class DyingStore(BaseStore):
    def __init__(self, inner: BaseStore, flag: Path) -> None:
        self.inner, self.flag = inner, flag

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        results = self.inner.batch(ops)
        if any(isinstance(op, PutOp) for op in ops) and not self.flag.exists():
            self.flag.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return self.batch(ops)


def main() -> None:
    url, thread_id, user, flag = sys.argv[1:5]
    with open_conversations(url) as conversations:
        assert conversations.store is not None
        store: Any = DyingStore(conversations.store, Path(flag))
        agent = compile_agent(conversations.saver, store=store)
        for _ in Runner(conversations, agent).resume(thread_id, user, answer={"action": "approve"}):
            pass


if __name__ == "__main__":
    main()
