"""What prune says: a dry run only says what it would do; a duration it cannot read names
the units it can. Through the real command line."""

from tests.helpers import run_cli


def test_a_dry_run_says_what_it_would_keep_not_what_it_kept(db_url):
    made = run_cli("chat", "-u", "alice", "--db", db_url, "what is 2+2?")
    assert made.returncode == 0, made.stderr
    looked = run_cli("prune", "--keep", "1", "--dry-run", "--db", db_url)
    assert looked.returncode == 0, looked.stderr
    assert "would keep the latest checkpoints of 1 thread(s)" in looked.stdout
    assert "kept" not in looked.stdout


def test_a_duration_it_cannot_read_names_every_unit():
    for text in ("90", "1y", "1.5d"):
        refused = run_cli("prune", "--older-than", text, "--dry-run", "--db", "memory://")
        assert refused.returncode == 1
        assert "s (seconds), m (minutes), h (hours), d (days) or w (weeks)" in refused.stderr
