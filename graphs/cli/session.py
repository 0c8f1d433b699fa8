"""A user's session on the command line: runs, approvals, pauses, all printed as they happen.

Owns talking to the person: streaming each step (``live`` prints it), asking for
approval when the agent waits on a human, and turning Ctrl-C or SIGTERM into a pause
at the next step boundary (a second Ctrl-C stops at once). Durability itself is the
``Runner``'s; this class only drives it and prints. A question is never dropped:
a new message waits until it is answered, and leaving at the approval prompt
(end of input) leaves the chat with the question still pending.
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

from checkpointing import (
    NO_ANSWER,
    Conversation,
    NothingToResume,
    Runner,
    ThreadState,
    check_storable,
    waiting_for_answer,
)
from graphs.agent import RECURSION_LIMIT
from graphs.cli.live import LiveOutput
from graphs.cli.render import questions
from graphs.cli.terminal import safe
from graphs.models import ModelFailure, ModelUnavailable, model_failure

SIGNAL_PAUSE = "stopped by a signal"
APPROVAL_PROMPT = "approve? [y]es / [n]o / [e]dit: "
EDIT_PROMPT = "the fact to remember instead: "
UNFINISHED = ("crashed", "paused", "failed")


class StoppedNow(KeyboardInterrupt):
    """A second Ctrl-C stopped a run at once; the message says how to continue it."""


def _say_on_stderr(text: str) -> None:
    click.echo(text, err=True)


@contextmanager
def pausing_on_signals(
    control: RunControl, say: Callable[[str], None] = _say_on_stderr
) -> Iterator[None]:
    """First Ctrl-C/SIGTERM: drain at the next step boundary. Second Ctrl-C: stop now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if control.drain_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        control.request_drain(SIGNAL_PAUSE)
        say("pausing after the current step (Ctrl-C again to stop now)")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def approval_action(text: str) -> str | None:
    """What a reply at the approval prompt means: approve, reject, edit, or None (unclear)."""
    word = text.strip().lower().removeprefix("/")  # /approve, as at the chat prompt
    for action, words in (
        ("approve", ("y", "yes", "approve")),
        ("reject", ("n", "no", "reject")),
        ("edit", ("e", "edit")),
    ):
        if word in words:
            return action
    return None


class Session:
    """Drives a ``Runner`` for one user and prints every step."""

    def __init__(
        self,
        runner: Runner,
        user: str,
        conversation: Conversation | None,
        *,
        ask: Callable[[str], str | None] | None = None,
        wait: float = 0.0,
        stream: bool = False,
        system: str | None = None,
    ) -> None:
        self.runner, self.user, self.conversation = runner, user, conversation
        self.ask = ask  # None: never prompt (one-shot commands)
        self.wait = wait  # seconds to wait for a thread another process runs
        self.stream = stream  # print the model's text as it arrives (a terminal)
        self.system = system  # the system prompt each message sets in the thread's state
        self.paused_by: str | None = None
        self._fresh = False  # the conversation was started here and has not run yet
        self.unsent = False  # a message was held back: the command must not exit 0

    @property
    def thread_id(self) -> str:
        assert self.conversation is not None
        return self.conversation.thread_id

    def send(self, text: str) -> None:
        """Send a new message, first finishing whatever the thread left undone.

        Raises ``NothingToResume`` (the message not sent) if a question stays unanswered.
        """
        check_storable(text)  # before a new conversation is started for it
        if self.conversation is None:
            self.conversation = self.runner.conversations.start(self.user)
            self._fresh = True
            click.echo(f"new conversation {self.thread_id} ({self._how_to_continue()})")
        elif not self._finish_first():
            self.unsent = True
            click.echo("your message was not sent: the previous run was paused again", err=True)
            return
        conversation = self.conversation
        inputs: dict[str, Any] = {"messages": [HumanMessage(text, id=str(uuid4()))]}
        if self.system is not None:
            inputs["system"] = self.system
        self._drive(lambda options: self.runner.stream(conversation, inputs, **options))

    def _how_to_continue(self) -> str:
        if self.runner.conversations.backend.dialect == "memory":
            return "kept in memory: it is gone when this process exits"
        return f"continue it with --thread {self.thread_id}"

    def _finish_first(self) -> bool:
        """Before each message: finish a cut-off run, have a pending question answered.

        Looked at every time, as another process may have left the thread waiting since.
        True if the message may go in; False if paused; raises if a question stays open.
        """
        thread = self.runner.state(self.thread_id, self.user)
        if thread.state in UNFINISHED:
            click.echo(f"finishing the previous run first: it was {thread.state} mid-way")
            settled = self.resume()
        elif thread.state == "waiting":
            settled = self._settle(thread)
        else:
            return True
        if settled or self.paused_by is not None:
            return settled
        error = waiting_for_answer(self.thread_id, self.user)
        raise NothingToResume(f"your message was not sent: {error}")

    def resume(self, answer: Any = NO_ANSWER, *, retry: bool = False) -> bool:
        """Continue the thread (with *answer* if it waits for one); True if it is settled."""
        key = (self.thread_id, self.user)
        return self._drive(
            lambda options: self.runner.resume(*key, answer=answer, retry=retry, **options)
        )

    def _drive(self, start: Callable[[dict[str, Any]], Iterator[Any]]) -> bool:
        """Run *start*(options), printing each step; then deal with a pause or a question.

        True if the thread is settled (not paused, not waiting for an answer).
        """
        control = RunControl()
        live = LiveOutput(stream=self.stream, spin=sys.stderr.isatty())
        options = {
            "control": control,
            "stream_mode": live.stream_mode,
            "recursion_limit": RECURSION_LIMIT,
            "wait": self.wait,
        }
        fresh, self._fresh = self._fresh, False
        try:
            with pausing_on_signals(control, live.notice), live:
                for event in start(options):
                    live.show(event)
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
        """Ask the person the pending questions (interactive), or say how to answer them.

        At the end of input (Ctrl-D) the person leaves: ``NothingToResume`` says how to
        answer later, and the question stays pending.
        """
        for question in questions(thread):
            click.echo(f"waiting for your approval: {safe(question)}")
        if self.ask is None:
            click.echo(
                f"answer with 'durable-agent resume {self.thread_id} --user {self.user} "
                "--approve' (or --reject, --edit FACT or --answer TEXT)"
            )
            return False
        answer = self._approval()
        if answer is None:
            raise waiting_for_answer(self.thread_id, self.user)
        return self.resume(answer)

    def _approval(self) -> dict[str, str] | None:
        """The person's answer, asked until it is clear; None if they left (end of input)."""
        assert self.ask is not None
        while (reply := self.ask(APPROVAL_PROMPT)) is not None:
            action = approval_action(reply)
            command, _, given = reply.strip().partition(" ")
            if command.lower() == "/edit" and given.strip():  # as at the chat prompt
                return {"action": "edit", "fact": given.strip()}
            if action is None:
                click.echo("please answer y (yes), n (no) or e (edit the fact first)")
            elif action != "edit":
                return {"action": action}
            else:
                while (fact := self.ask(EDIT_PROMPT)) is not None and not fact.strip():
                    pass
                return None if fact is None else {"action": "edit", "fact": fact.strip()}
        return None


def prompt_line(prompt: str) -> str | None:
    """Read one line from the terminal (or piped input); None at end of input."""
    if sys.stdin.isatty():
        click.echo(prompt, nl=False, err=True)
    line = sys.stdin.readline()
    if not line and sys.stdin.isatty():
        click.echo("", err=True)  # Ctrl-D leaves the cursor after the prompt: end that line
    return line.rstrip("\n") if line else None
