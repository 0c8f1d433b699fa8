"""Notices between processes on one PostgreSQL database, and the fence on a run's writes.

A notice arrives only once the change that sends it has committed; a listener whose
session is terminated says it lost it, listens again, says so (``resync``: read the rows
again), and hears later notices. A lease let go sends ``f <thread>``; one dropped by a
dying session sends nothing. Real sessions on a real server throughout.
"""

from __future__ import annotations

import queue
import time

import psycopg
import pytest

from checkpointing import Listener, open_saver
from checkpointing.backend import backend_of
from checkpointing.notices import CHANNEL, EVENTS, FREE, LOST, RESYNC
from tests.helpers import throwaway_database

pytestmark = pytest.mark.postgres
WAIT = 10.0


def _next(heard: queue.Queue[tuple[str, str]], wanted: str) -> tuple[str, str]:
    """The next notice of kind *wanted*, skipping others; fails after ``WAIT`` s."""
    deadline = time.monotonic() + WAIT
    while (left := deadline - time.monotonic()) > 0:
        try:
            found = heard.get(timeout=left)
        except queue.Empty:
            break
        if found[0] == wanted:
            return found
    raise AssertionError(f"no {wanted!r} notice in {WAIT} s")


def _notify(kind: str, key: str) -> tuple[str, tuple[str, str]]:
    """A statement sending ``kind key``, as the code's own notifying statements do."""
    return "SELECT pg_notify(?, ?)", (CHANNEL, f"{kind} {key}")


def _none_of(heard: queue.Queue[tuple[str, str]], kind: str, key: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            assert heard.get(timeout=left) != (kind, key)
        except queue.Empty:
            return


@pytest.fixture
def backend():
    with throwaway_database() as url, open_saver(url) as saver:
        yield backend_of(saver)


@pytest.fixture
def listener(backend):
    heard: queue.Queue[tuple[str, str]] = queue.Queue()
    listening = Listener(backend.listen, lambda kind, key: heard.put((kind, key))).start()
    _next(heard, RESYNC)
    yield listening, heard
    listening.stop()


def test_a_notice_arrives_once_its_change_commits_and_not_if_it_rolls_back(backend, listener):
    _, heard = listener
    backend.db.run([_notify(EVENTS, "run-1")])
    assert _next(heard, EVENTS) == (EVENTS, "run-1")
    with pytest.raises(psycopg.errors.DivisionByZero):
        backend.db.run([_notify(EVENTS, "run-2"), ("SELECT 1 / 0", ())])
    _none_of(heard, EVENTS, "run-2", 1.5)


def test_a_listener_whose_session_is_terminated_listens_again_and_says_so(backend, listener):
    listening, heard = listener
    pid = listening._conn.info.backend_pid
    backend.db.run([("SELECT pg_terminate_backend(?)", (pid,))])
    assert _next(heard, LOST) == (LOST, "")
    assert _next(heard, RESYNC) == (RESYNC, "")
    assert listening.listening
    assert listening._conn.info.backend_pid != pid
    backend.db.run([_notify(EVENTS, "after")])
    assert _next(heard, EVENTS) == (EVENTS, "after")


def test_a_lease_let_go_says_so_and_one_dropped_by_a_dead_session_does_not(backend, listener):
    _, heard = listener
    release = backend.leases.try_acquire("t-let-go")
    release()
    assert _next(heard, FREE) == (FREE, "t-let-go")
    release = backend.leases.try_acquire("t-dropped")
    sessions = [backend.leases.held["t-dropped"].hold, backend.leases.held["t-dropped"].write]
    for conn in sessions:
        backend.db.run([("SELECT pg_terminate_backend(?)", (conn.info.backend_pid,))])
    deadline = time.monotonic() + WAIT  # the database lets it go as the sessions end
    while not backend.leases.is_free("t-dropped"):
        assert time.monotonic() < deadline, "the dead sessions' lease was never let go"
        time.sleep(0.05)
    _none_of(heard, FREE, "t-dropped", 1.5)
    release()  # the dead sessions unlock nothing, and say nothing
    _none_of(heard, FREE, "t-dropped", 1.0)


def test_a_holder_whose_sessions_died_cannot_touch_its_runs_row_or_events(backend):
    """The run's writes go through its lease's session: once the database has dropped the
    holder's sessions (and so its locks), nothing the holder still sends lands."""
    from checkpointing import Conversations, LeaseLost, RunEvents, Runs

    conversations = Conversations(backend)
    thread = conversations.start("u").thread_id
    runs, events = Runs(backend), RunEvents(backend)
    run = runs.create(
        run_id="r1", thread_id=thread, user_id="u", assistant_id="a", graph_id="g",
        kwargs={}, metadata={}, strategy="enqueue",
    )  # fmt: skip
    release = backend.leases.try_acquire(thread)
    assert runs.claim(run.run_id, None, thread) is not None
    events.append(run.run_id, 1, [("values", "{}")], thread)
    lease = backend.leases.held[thread]
    for conn in (lease.hold, lease.write):
        backend.db.run([("SELECT pg_terminate_backend(?)", (conn.info.backend_pid,))])
    with pytest.raises(LeaseLost):
        events.append(run.run_id, 2, [("values", "{}")], thread)
    with pytest.raises(LeaseLost):
        runs.finish(run.run_id, "error", "cut off", thread=thread)
    release()
    assert runs.get(thread, run.run_id, "u").status == "running"  # for a server to take up
    assert [e.seq for e in events.after(run.run_id, 0)] == [1]


def test_a_quiet_listener_keeps_its_session(listener):
    """Seconds without a notice are no fault: the session stays, nothing is resent."""
    listening, heard = listener
    pid = listening._conn.info.backend_pid
    _none_of(heard, LOST, "", 1.5)
    assert listening.listening
    assert listening._conn.info.backend_pid == pid


def test_a_run_accepted_is_told_and_one_refused_is_not(backend, listener):
    from checkpointing import Conversations, Runs, ThreadBusy
    from checkpointing.notices import RUN

    _, heard = listener
    thread = Conversations(backend).start("u").thread_id
    runs = Runs(backend)
    create = {
        "thread_id": thread, "user_id": "u", "assistant_id": "a", "graph_id": "g",
        "kwargs": {}, "metadata": {}, "strategy": "reject",
    }  # fmt: skip
    runs.create(run_id="accepted", **create)
    assert _next(heard, RUN) == (RUN, "accepted")
    with pytest.raises(ThreadBusy):  # reject: the first is still pending
        runs.create(run_id="refused", **create)
    _none_of(heard, RUN, "refused", 1.0)
