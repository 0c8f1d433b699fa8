"""A user's session on the command line: runs, approvals, pauses, all printed as they happen.

Owns talking to the person: streaming each step, asking for approval when the
agent waits on a human, and turning Ctrl-C or SIGTERM into a pause at the next
step boundary (a second Ctrl-C stops at once). Durability itself is the
``Runner``'s; this class only drives it and prints.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import uuid4

import click
from langchain_core.messages import HumanMessage
from langgraph.errors import GraphDrained
from langgraph.runtime import RunControl

from checkpointing.conversations import Conversation
from checkpointing.resume import Runner
from checkpointing.text import check_storable
from checkpointing.thread_state import NO_ANSWER, ThreadState
from graphs.agent import RECURSION_LIMIT
from graphs.models import ModelFailure, ModelUnavailable, model_failure
from graphs.render import update_lines
from graphs.terminal import safe

SIGNAL_PAUSE = "stopped by a signal"


class StoppedNow(KeyboardInterrupt):
    """A second Ctrl-C stopped a run at once; the message says how to continue it."""


@contextmanager
def pausing_on_signals(control: RunControl) -> Iterator[None]:
    """First Ctrl-C/SIGTERM: drain at the next step boundary. Second Ctrl-C: stop now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if control.drain_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        control.request_drain(SIGNAL_PAUSE)
        click.echo("pausing after the current step (Ctrl-C again to stop now)", err=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def approval_answer(text: str) -> dict[str, str]:
    """The answer a person's reply means: y/yes, n/no, or a corrected value."""
    word = text.strip().lower()
    if word in ("y", "yes", "approve", ""):
        return {"action": "approve"}
    if word in ("n", "no", "reject"):
        return {"action": "reject"}
    return {"action": "edit", "fact": text.strip()}


def questions(thread: ThreadState) -> list[str]:
    out = []
    for pending in thread.waiting_for:
        value = pending.value
        out.append(value.get("question", repr(value)) if isinstance(value, dict) else repr(value))
    return out


class Session:
    """Drives a ``Runner`` for one user and prints every step."""

    def __init__(
        self,
        runner: Runner,
        user: str,
        conversation: Conversation | None,
        *,
        ask: Callable[[str], str | None] | None = None,
    ) -> None:
        self.runner, self.user, self.conversation = runner, user, conversation
        self.ask = ask  # None: never prompt (one-shot commands)
        self.paused_by: str | None = None
        self._checked = conversation is None
        self._fresh = False  # the conversation was started here and has not run yet

    @property
    def thread_id(self) -> str:
        assert self.conversation is not None
        return self.conversation.thread_id

    def send(self, text: str) -> None:
        """Send a new message, first finishing whatever the thread left undone."""
        check_storable(text)  # before a new conversation is started for it
        if self.conversation is None:
            self.conversation = self.runner.conversations.start(self.user)
            self._fresh = True
            tid = self.conversation.thread_id
            click.echo(f"new conversation {tid} (continue it with --thread {tid})")
        elif not self._checked:
            self._checked = True
            thread = self.runner.state(self.thread_id, self.user)
            if thread.state in ("crashed", "paused", "failed"):
                click.echo(f"finishing the previous run first: it was {thread.state} mid-way")
                if not self.resume():
                    return
            elif thread.state == "waiting" and not self._settle(thread):
                click.echo("your message was not sent: answer the question first")
                return
        conversation, inputs = (
            self.conversation,
            {"messages": [HumanMessage(text, id=str(uuid4()))]},
        )
        self._drive(lambda options: self.runner.stream(conversation, inputs, **options))

    def resume(self, answer: Any = NO_ANSWER) -> bool:
        """Continue the thread (with *answer* if it waits for one); True if it is settled."""
        return self._drive(
            lambda options: self.runner.resume(self.thread_id, self.user, answer=answer, **options)
        )

    def _drive(self, start: Callable[[dict[str, Any]], Iterator[Any]]) -> bool:
        """Run *start*(options), printing each step; then deal with a pause or a question.

        True if the thread is settled (not paused, not waiting for an answer).
        """
        control = RunControl()
        options = {"control": control, "stream_mode": "updates", "recursion_limit": RECURSION_LIMIT}
        fresh, self._fresh = self._fresh, False
        try:
            with pausing_on_signals(control):
                for update in start(options):
                    for line in update_lines(update):
                        click.echo(line)
        except KeyboardInterrupt:
            raise StoppedNow(
                f"stopped at once; conversation {self.thread_id} is saved up to its last "
                f"finished step: continue it with {self._resume_command()}"
            ) from None
        except GraphDrained as drained:
            self.paused_by = drained.reason
            click.echo(f"paused ({drained.reason}); continue with {self._resume_command()}")
            return False
        except Exception as exc:
            failure = model_failure(exc)
            if failure is None:
                raise
            raise ModelUnavailable(self._model_failed(failure, fresh)) from exc
        thread = self.runner.state(self.thread_id, self.user)
        self.conversation = thread.conversation
        return thread.state != "waiting" or self._settle(thread)

    def _resume_command(self) -> str:
        return f"'durable-agent resume {self.thread_id} --user {self.user}'"

    def _model_failed(self, failure: ModelFailure, fresh: bool) -> str:
        """The line for a run the model failed, after removing a conversation left empty.

        A conversation whose first run failed for a wrong setting holds only the message
        that could not be answered; kept, it would be a failed conversation for each try.
        """
        tid = self.thread_id
        said = f"{failure.problem}: {failure.fix}"
        if fresh and failure.misconfigured and self._unanswered(tid):
            self.runner.conversations.delete(tid, self.user)
            self.conversation = None
            return f"{said}, then send your message again (conversation {tid} was not kept)"
        then = "once that is fixed, " if failure.misconfigured else ""
        return f"{said}; conversation {tid} is saved: {then}continue it with " + (
            self._resume_command()
        )

    def _unanswered(self, thread_id: str) -> bool:
        return self.runner.conversations.get(thread_id, self.user).message_count <= 1

    def _settle(self, thread: ThreadState) -> bool:
        """Ask the person the pending questions (interactive), or say how to answer them."""
        for question in questions(thread):
            click.echo(f"waiting for your approval: {safe(question)}")
        reply = (
            self.ask("approve? [Y]es / [n]o / or type a corrected value: ") if self.ask else None
        )
        if reply is None:
            click.echo(
                f"answer with 'durable-agent resume {self.thread_id} --user {self.user} "
                "--approve' (or --reject, or --answer TEXT)"
            )
            return False
        return self.resume(approval_answer(reply))


def prompt_line(prompt: str) -> str | None:
    """Read one line from the terminal (or piped input); None at end of input."""
    if sys.stdin.isatty():
        click.echo(prompt, nl=False, err=True)
    line = sys.stdin.readline()
    return line.rstrip("\n") if line else None
