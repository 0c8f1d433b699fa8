"""Thread ID prefixes: every command takes a unique prefix of one of the user's IDs, in
any case; an ambiguous one names the candidates; other users' threads stay invisible."""

import json

import pytest

from checkpointing import AmbiguousThread, InvalidIdentifier, ThreadNotFound, open_conversations
from checkpointing.prefixes import MIN_PREFIX, SHOWN_CANDIDATES
from tests.helpers import rows_for, run_cli


def _start(db_url: str, user: str, text: str) -> str:
    result = run_cli("chat", "-u", user, "--db", db_url, text)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[2]


def _unique_prefix(thread_id: str, others: list[str]) -> str:
    for length in range(1, len(thread_id) + 1):
        if not any(o.lower().startswith(thread_id[:length].lower()) for o in others):
            return thread_id[:length]
    raise AssertionError(f"{thread_id} is a prefix of another")


@pytest.mark.postgres_covered_by("test_resolve_escapes_like_wildcards_and_prefers_an_exact_id")
def test_every_command_takes_a_unique_prefix_in_any_case(db_url):
    first = _start(db_url, "alice", "what is 12*7?")
    second = _start(db_url, "alice", "what is 2+2?")
    prefix = _unique_prefix(first, [second]).upper()

    shown = run_cli("show", prefix, "-u", "alice", "--db", db_url, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["thread_id"] == first

    renamed = run_cli("rename", prefix, "-u", "alice", "Times", "--db", db_url)
    assert renamed.stdout == f"renamed {first} to 'Times'\n"
    continued = run_cli("chat", "-t", prefix, "-u", "alice", "--db", db_url, "and 3+3")
    assert continued.returncode == 0, continued.stderr
    assert "new conversation" not in continued.stdout
    resumed = run_cli("resume", prefix, "-u", "alice", "--db", db_url)
    assert resumed.returncode == 1  # nothing to resume: the thread was found, by its full ID
    assert first in resumed.stderr
    paused = run_cli("pause", prefix, "-u", "alice", "--db", db_url)
    assert (
        paused.stderr == f"durable-agent: conversation '{first}' is not running; nothing to pause\n"
    )

    deleted = run_cli("delete", prefix, "-u", "alice", "--yes", "--db", db_url)
    assert deleted.stdout == f"deleted {first}\n"
    assert set(rows_for(db_url, first).values()) == {0}
    assert rows_for(db_url, second)["conversations"] == 1


@pytest.mark.postgres_covered_by("test_resolve_escapes_like_wildcards_and_prefers_an_exact_id")
def test_an_ambiguous_prefix_names_the_candidates_and_changes_nothing(db_url):
    ids = [_start(db_url, "alice", f"what is {n}+{n}?") for n in range(SHOWN_CANDIDATES + 1)]
    common = ids[0][: min(len(_unique_prefix(i, [j])) for i in ids for j in ids if i != j) - 1]
    assert common
    assert all(i.startswith(common) for i in ids)
    before = [rows_for(db_url, i) for i in ids]

    result = run_cli("delete", common, "-u", "alice", "--yes", "--db", db_url)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert f"'{common}' is the start of several of alice's conversations: " in result.stderr
    listed = [i for i in ids if i in result.stderr]
    assert len(listed) == SHOWN_CANDIDATES  # capped, then "and more"
    assert "(what is " in result.stderr
    assert result.stderr.endswith(", and more; give more of the ID\n")
    assert [rows_for(db_url, i) for i in ids] == before


def test_another_users_threads_neither_match_nor_make_a_prefix_ambiguous(db_url):
    mine = _start(db_url, "alice", "what is 12*7?")
    theirs = _start(db_url, "bob", "what is 1+1")
    shared = mine[: len(_unique_prefix(mine, [theirs])) - 1]  # bob's ID starts so too

    found = run_cli("show", shared, "-u", "alice", "--db", db_url, "--json")
    assert json.loads(found.stdout)["thread_id"] == mine
    foreign = run_cli("show", theirs[:12], "-u", "alice", "--db", db_url)
    assert foreign.returncode == 1
    assert foreign.stderr == (
        f"durable-agent: no conversation '{theirs[:12]}' for user 'alice'; "
        "see yours with 'durable-agent threads --user alice'\n"
    )


def test_resolve_escapes_like_wildcards_and_prefers_an_exact_id(db_url):
    with open_conversations(db_url) as conversations:
        for thread_id in ("a_b-1", "axb-2", "abc", "abcdef", "Zed"):
            conversations.start("alice", thread_id=thread_id)
        conversations.start("bob", thread_id="a_bob")
        assert conversations.resolve("a_", "alice") == "a_b-1"  # "_" is no wildcard
        assert conversations.resolve("abc", "alice") == "abc"  # exact, though abcdef starts so
        assert conversations.resolve("ABC", "alice") == "abc"
        assert conversations.resolve("abcd", "alice") == "abcdef"
        assert conversations.resolve("zED", "alice") == "Zed"
        with pytest.raises(AmbiguousThread, match="'ab' is the start of several"):
            conversations.resolve("ab", "alice")
        with pytest.raises(ThreadNotFound):
            conversations.resolve("a_bo", "alice")
        with pytest.raises(InvalidIdentifier):
            conversations.resolve("a%", "alice")


def test_short_ids_are_unique_among_the_users_own_and_at_least_eight_long(db_url):
    ids = ["0123456789-a", "0123456789-b", "01234567zz-c", "Q", "abcdefghijk"]
    with open_conversations(db_url) as conversations:
        for thread_id in ids:
            conversations.start("alice", thread_id=thread_id)
        conversations.start("bob", thread_id="abcdefghijX")  # another user's: no effect
        assert conversations.short_ids("alice", ids) == {
            "0123456789-a": "0123456789-a",
            "0123456789-b": "0123456789-b",
            "01234567zz-c": "01234567z",
            "Q": "Q",
            "abcdefghijk": "abcdefgh",
        }
        assert MIN_PREFIX == 8
        for thread_id, prefix in conversations.short_ids("alice", ids).items():
            assert conversations.resolve(prefix.swapcase(), "alice") == thread_id
