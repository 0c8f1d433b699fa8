"""The server's worker: it takes run rows from the queue and runs them, durably.

What is done with one run is ``execution.py``; this module decides which runs this
process takes, and when. A run is claimed under its thread's lease (the row is marked
running only by the process holding the thread), run with ``durability="sync"`` through
the same ``Runner`` as the command line, and finished under the lease too, so a row that
says running while its thread's lease is free was cut off: at start-up and then every few
seconds the worker takes such runs up again from their last checkpoint, and steps that
had finished are not run again. Shutting down drains: running runs stop at their next
step boundary and are queued again for the next worker.

Several servers may share one database. On PostgreSQL they hear of each other's runs
(``hub``, ``checkpointing.notices``): a worker looks when a run is created or ends or a
thread is let go, and otherwise only every few seconds. A run whose thread another
process holds is set aside until that thread is let go, not tried at every look. Each
server runs at most ``max_runs`` at once; the rest wait, pending, for whichever has room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping

from langgraph.errors import GraphDrained

from checkpointing import (
    ACTIVE_RUN_STATUSES,
    Conversations,
    DatabaseUnavailable,
    LeaseLost,
    NothingToResume,
    Run,
    RunEvents,
    Runner,
    RunNotFound,
    Runs,
    ThreadBusy,
    ThreadNotFound,
    free_of,
    load_settings,
    scrub,
)
from graphs.server.execution import SHUTDOWN, Execution, RunGone, RunStale
from graphs.server.hub import Hub
from graphs.server.registry import Served

log = logging.getLogger("durable_agent.server")
# How often a worker looks for cut-off runs: a server that died is noticed in this long
# plus the time its database sessions take to be found dead (at once for a killed
# process on a live machine; TCP keepalives bound it for a machine that went silent).
RECOVER_EVERY = 3.0
# A run this process lost the lease of (its sessions cut off) is left this long to the
# other servers, which were not cut off; alone, this one takes it up itself after that.
HAND_OVER = 2 * RECOVER_EVERY
# The least time between two looks: notices from busy servers come by the hundred a
# second, and one look answers all those that arrived meanwhile.
LOOK_GAP = 0.05
# A run whose thread another process holds is tried again when that thread is let go
# (a notice), or after this long: a holder that died says nothing.
SET_ASIDE = 2.0
PRUNE_EVERY = 600.0
# A cancel sent to this process stops its run directly (``cancel``); the database is polled
# only for one sent to another server, so less often than the command line's 0.2 s: each
# poll of each running run is a read that waits for the database's lock.
PAUSE_POLL = 1.0
# A stateless run's thread is deleted this long after the run ends: its waiting or
# streaming client reads the outcome first. (Lost if the server dies meanwhile.)
FORGET_AFTER = 30.0


class Worker:
    """Takes due runs and cut-off runs from the database and runs them in this process."""

    def __init__(
        self, conversations: Conversations, served: Mapping[str, Served], hub: Hub, *,
        max_runs: int = 32,
    ) -> None:  # fmt: skip
        self.conversations, self.served, self.hub = conversations, served, hub
        self.runs, self.events = Runs(conversations.backend), RunEvents(conversations.backend)
        self.max_runs = max_runs
        self.events_keep = load_settings().run_events_keep
        self.active: dict[str, tuple[asyncio.Task[None], Execution]] = {}
        self.set_aside: dict[str, float] = {}  # thread ID -> when to try it again
        self.handed_over: dict[str, float] = {}  # run ID -> when this one may take it up
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping = False
        self.to_forget: list[tuple[float, Run]] = []  # stateless runs' threads, and when

    def tell(self, run_id: str) -> None:
        """News of *run_id* for its readers in this process; callable from any thread."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.hub.tell, run_id)

    async def serve(self) -> None:
        """Take runs until cancelled: cut-off ones first, then whatever is due."""
        self.loop = asyncio.get_running_loop()
        recovered_at = pruned_at = 0.0
        while not self.stopping:
            try:
                recovered_at, pruned_at = await self._look(recovered_at, pruned_at)
            except Exception as exc:  # the database is down, say: look again, say why once
                log.warning("worker: %s", scrub(f"{type(exc).__name__}: {exc}"))
                await asyncio.sleep(RECOVER_EVERY)

    async def _look(self, recovered_at: float, pruned_at: float) -> tuple[float, float]:
        """One look for work: cut-off runs, events to prune, due runs; then a short wait."""
        self.hub.queue.clear()  # news from here on wakes the next look
        if time.monotonic() - recovered_at > RECOVER_EVERY:
            recovered_at = time.monotonic()
            await self._take(await asyncio.to_thread(self._cut_off))
        if time.monotonic() - pruned_at > PRUNE_EVERY:
            pruned_at = time.monotonic()
            cutoff = time.time() - self.events_keep
            await asyncio.to_thread(self.events.prune_before, cutoff)
        if self.active:  # cancels sent to any server, for the runs this one runs
            for run_id in await asyncio.to_thread(self.runs.cancelled_running):
                self.cancel(run_id)
        await self._forget_due()
        self._take_back_freed()
        free = self.max_runs - len(self.active)
        if free > 0:
            limit = free + len(self.active) + len(self.set_aside)
            await self._take(await asyncio.to_thread(self.runs.due, limit))
        await asyncio.sleep(LOOK_GAP)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.hub.queue.wait(), self.hub.poll_seconds)
        return recovered_at, pruned_at

    def _take_back_freed(self) -> None:
        """Threads let go since the last look, or set aside long enough, may be tried."""
        freed, self.hub.freed = self.hub.freed, set()
        now = time.monotonic()
        for thread_id, until in list(self.set_aside.items()):
            if thread_id in freed or until <= now:
                del self.set_aside[thread_id]

    def _cut_off(self) -> list[Run]:
        leases = self.conversations.backend.leases
        now = time.monotonic()
        self.handed_over = {r: at for r, at in self.handed_over.items() if at > now}
        running = [
            run
            for run in self.runs.running()
            if run.run_id not in self.active and run.run_id not in self.handed_over
        ]
        free = set(free_of(leases, [run.thread_id for run in running]))
        found = [run for run in running if run.thread_id in free]
        for run in found:
            log.info("taking up run %s of thread %s, cut off mid-run", run.run_id, run.thread_id)
        return found

    async def _take(self, runs: list[Run]) -> None:
        for run in runs:
            if self.stopping:  # a look under way when the drain began takes nothing more
                return
            if run.run_id in self.active or len(self.active) >= self.max_runs:
                continue
            if run.thread_id in self.set_aside:
                continue
            if any(e.run.thread_id == run.thread_id for _, e in self.active.values()):
                continue  # this process runs that thread already; the next look takes it
            execution = Execution(run, self.runs, self.events, self.conversations, self.tell)
            task = asyncio.create_task(self._execute(execution), name=f"run-{run.run_id}")
            self.active[run.run_id] = (task, execution)
            self.hub.local.add(run.run_id)

    async def _execute(self, execution: Execution) -> None:
        run = execution.run
        try:
            served = self.served.get(run.graph_id)
            conversation = await self.conversations.aget(run.thread_id, run.user_id)
            if served is None:
                await asyncio.to_thread(
                    self.runs.finish, run.run_id, "error", f"no graph {run.graph_id!r} served"
                )
                return
            runner = Runner(self.conversations, served.graph, pause_poll=PAUSE_POLL)
            await execution.execute(runner, conversation)
        except RunGone:  # finished, or cancelled before it ran: then it is over
            await asyncio.to_thread(self.runs.finish, run.run_id, "interrupted")
        except RunStale:
            pass  # queued again; the next look decides afresh
        except ThreadBusy:  # another process holds the thread: until it lets go
            self.set_aside[run.thread_id] = time.monotonic() + SET_ASIDE
        except LeaseLost as exc:  # cut off from the database: another server takes it up
            log.warning("run %s stopped: %s", run.run_id, scrub(str(exc)))
            self.handed_over[run.run_id] = time.monotonic() + HAND_OVER
        except DatabaseUnavailable as exc:  # no connection for its lease, say: it waits
            log.warning("run %s waits: %s", run.run_id, scrub(str(exc)))
        except GraphDrained:
            pass  # paused or shut down: recorded by ``done``
        except Exception as exc:  # recorded by ``done`` when it ran under the lease
            await asyncio.to_thread(self._failed_outside, execution, exc)
        finally:
            self.active.pop(run.run_id, None)
            self.hub.local.discard(run.run_id)
            self.hub.tell(run.run_id)
            self.hub.queue.set()  # the thread's next run may start now
            self.forget_later(run)

    def forget_later(self, run: Run) -> None:
        """Delete *run*'s thread once it has been over for ``FORGET_AFTER`` seconds."""
        if run.kwargs.get("on_completion") == "delete":
            self.to_forget.append((time.monotonic() + FORGET_AFTER, run))

    async def _forget_due(self) -> None:
        """Delete the threads of stateless runs over for a while (by their rows: another
        server may have finished the run later than this one let it go)."""
        now, due = time.monotonic(), []
        for at, run in list(self.to_forget):
            if at <= now:
                self.to_forget.remove((at, run))
                due.append(run)
        for run in due:
            try:
                found = await asyncio.to_thread(
                    self.runs.get, run.thread_id, run.run_id, run.user_id
                )
                if (
                    found.status in ACTIVE_RUN_STATUSES
                    or time.time() - found.updated_at < FORGET_AFTER
                ):
                    self.to_forget.append((now + FORGET_AFTER, run))
                else:
                    await self.conversations.adelete(run.thread_id, run.user_id)
            except (RunNotFound, ThreadNotFound):
                pass  # deleted already
            except Exception as exc:  # busy, or the database away: try again later
                log.warning("stateless thread %s kept for now: %s", run.thread_id, scrub(str(exc)))
                self.to_forget.append((now + FORGET_AFTER, run))

    def _failed_outside(self, execution: Execution, exc: Exception) -> None:
        """A run refused before it held its thread (nothing to resume, the thread gone).
        One taken up again with its input in, whose thread had finished, succeeded."""
        run = execution.run
        if isinstance(exc, NothingToResume) and execution.thread_over():
            self.runs.finish(run.run_id, "success")
            return
        with contextlib.suppress(RunNotFound):
            if self.runs.get(run.thread_id, run.run_id, run.user_id).status in ACTIVE_RUN_STATUSES:
                execution.seq = self.events.last_seq(run.run_id)
                execution.fail(exc)

    def cancel(self, run_id: str) -> None:
        """Stop *run_id* at its next step boundary if this process runs it; the server
        running it finds its cancel mark otherwise, at its next look."""
        found = self.active.get(run_id)
        if found is not None:
            found[1].control.request_drain("cancelled")

    def begin_drain(self) -> None:
        """Stop taking runs; ask the running ones to stop at their next step boundary.
        Called on the loop's thread, at the signal, before uvicorn waits for connections."""
        self.stopping = True
        self.hub.queue.set()
        for _, execution in list(self.active.values()):
            execution.control.request_drain(SHUTDOWN)

    async def drain(self, timeout: float) -> None:
        """``begin_drain``, then wait up to *timeout* seconds for the runs to stop."""
        self.begin_drain()
        tasks = [task for task, _ in self.active.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
