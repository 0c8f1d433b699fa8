"""The default user and the config file, through the real entry point: flags, then
environment variables, then config.toml, then defaults (the login name for the user)."""

import json
import os
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.openai_server import Reply, openai_server

LOGIN = {"LOGNAME": "login-name", "USER": "login-name"}


def _owners(db_url: str, *users: str) -> dict[str, int]:
    counts = {}
    for user in users:
        listed = run_cli("threads", "-u", user, "--db", db_url, "--json")
        assert listed.returncode == 0, listed.stderr
        counts[user] = len(json.loads(listed.stdout))
    return counts


def _config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "chosen.toml"
    path.write_text(text)
    return {"DURABLE_AGENT_CONFIG": str(path)}


@pytest.mark.above_the_database
def test_the_user_is_the_flag_else_the_variable_else_the_config_file_else_the_login(
    db_url, tmp_path
):
    config = _config(tmp_path, 'user = "from-file"\n')
    env_user = {"DURABLE_AGENT_USER": "from-env"}
    cases = [
        (LOGIN, []),
        ({**LOGIN, **config}, []),
        ({**LOGIN, **config, **env_user}, []),
        ({**LOGIN, **config, **env_user}, ["--user", "from-flag"]),
    ]
    for env, flags in cases:
        result = run_cli("chat", *flags, "--db", db_url, "what is 1+1", env=env)
        assert result.returncode == 0, result.stderr
    owners = _owners(db_url, "login-name", "from-file", "from-env", "from-flag")
    assert owners == {"login-name": 1, "from-file": 1, "from-env": 1, "from-flag": 1}
    # Every command that named one user takes the same default: threads and show here.
    mine = run_cli("threads", "--db", db_url, "--json", env=LOGIN)
    [conversation] = json.loads(mine.stdout)
    assert conversation["user_id"] == "login-name"
    shown = run_cli("show", conversation["thread_id"], "--db", db_url, env={**LOGIN, **env_user})
    assert shown.returncode == 1  # from-env does not own it
    assert "for user 'from-env'" in shown.stderr


@pytest.mark.above_the_database
def test_commands_over_every_user_still_take_every_user(db_url):
    for user in ("alice", "bob"):
        assert run_cli("token", "create", "-u", user, "--db", db_url).returncode == 0
    listed = run_cli("token", "list", "--db", db_url, "--json", env={"DURABLE_AGENT_USER": "bob"})
    assert sorted(token["user_id"] for token in json.loads(listed.stdout)) == ["alice", "bob"]
    made = run_cli("token", "create", "--db", db_url, env={"DURABLE_AGENT_USER": "carol"})
    assert "for user carol:" in made.stdout


def test_an_empty_user_variable_is_one_line_naming_the_fix(tmp_path):
    db = tmp_path / "never.sqlite"
    empty = run_cli("chat", "--db", f"sqlite:///{db}", "hi", env={"DURABLE_AGENT_USER": " "})
    assert empty.returncode == 1
    assert empty.stderr == (
        "durable-agent: DURABLE_AGENT_USER is set but empty: give a user name, or unset it "
        "to use your login name\n"
    )
    assert not db.exists()


def test_the_config_file_names_the_database_below_the_variable_and_the_flag(tmp_path):
    from_file, from_env, from_flag = (tmp_path / f"{n}.sqlite" for n in ("file", "env", "flag"))
    config = _config(tmp_path, f'db = "sqlite:///{from_file}"\nuser = "alice"\n')
    assert run_cli("chat", "hi", env=config).returncode == 0
    env = {**config, "DURABLE_AGENT_DB": f"sqlite:///{from_env}"}
    assert run_cli("chat", "hi", env=env).returncode == 0
    assert run_cli("chat", "--db", f"sqlite:///{from_flag}", "hi", env=config).returncode == 0
    assert [p.exists() for p in (from_file, from_env, from_flag)] == [True, True, True]
    for path in (from_file, from_env, from_flag):
        assert _owners(f"sqlite:///{path}", "alice") == {"alice": 1}


def test_the_default_config_file_is_found_under_the_config_directory(tmp_path):
    # conftest points XDG_CONFIG_HOME at this test's directory: never the developer's.
    directory = Path(os.environ["XDG_CONFIG_HOME"]) / "durable-agent"
    directory.mkdir(parents=True)
    db = tmp_path / "chosen.sqlite"
    (directory / "config.toml").write_text(f'db = "sqlite:///{db}"\nuser = "alice"\n')
    assert run_cli("chat", "hi").returncode == 0
    assert _owners(f"sqlite:///{db}", "alice") == {"alice": 1}


def test_the_config_files_model_reaches_the_model_server_below_the_variable(tmp_path):
    config = _config(tmp_path, 'model = "model-from-file"\nuser = "alice"\n')
    db = f"sqlite:///{tmp_path / 'cp.sqlite'}"
    with openai_server([Reply(text="one"), Reply(text="two")]) as server:
        keys = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": server.url}
        assert run_cli("chat", "--db", db, "hi", env={**keys, **config}).returncode == 0
        env = {**keys, **config, "DURABLE_AGENT_MODEL": "model-from-env"}
        assert run_cli("chat", "--db", db, "hi", env=env).returncode == 0
    assert [request["model"] for request in server.requests] == [
        "model-from-file",
        "model-from-env",
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("user = alice\n", "is not valid TOML"),
        ('colour = "green"\n', "unknown key 'colour'; the keys are db, user, model"),
        ('context_tokens = "lots"\n', "context_tokens = 'lots' is not a whole number; write "
         "it as context_tokens = 8000"),
        ("pg_prepare = 1\n", "pg_prepare = 1 is not true or false"),
        ('db = ""\n', "db = '' is not a string (it is empty)"),
        ("[db]\nurl = 'x'\n", "db = {'url': 'x'} is not a string"),
    ],
)  # fmt: skip
def test_a_bad_config_file_is_one_line_naming_the_file_the_key_and_the_fix(tmp_path, text, says):
    config = _config(tmp_path, text)
    db = tmp_path / "never.sqlite"
    result = run_cli("chat", "-u", "alice", "--db", f"sqlite:///{db}", "hi", env=config)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert str(tmp_path / "chosen.toml") in result.stderr
    assert says in result.stderr
    assert not db.exists()
    assert run_cli("--help", env=config).returncode == 1  # before any command


def test_a_config_file_named_but_missing_is_refused(tmp_path):
    missing = tmp_path / "nope.toml"
    result = run_cli("threads", "-u", "alice", env={"DURABLE_AGENT_CONFIG": str(missing)})
    assert result.returncode == 1
    assert result.stderr == (
        f"durable-agent: DURABLE_AGENT_CONFIG names {missing}, which does not exist: "
        "create it, or unset DURABLE_AGENT_CONFIG\n"
    )


def test_storage_settings_from_the_file_are_checked_like_the_variables(tmp_path):
    config = _config(tmp_path, "pool_min_size = 5\npool_max_size = 2\n")
    db = f"sqlite:///{tmp_path / 'cp.sqlite'}"
    result = run_cli("chat", "-u", "alice", "--db", db, "hi", env=config)
    assert result.returncode == 1
    assert "DURABLE_AGENT_POOL_MIN_SIZE (5) is above DURABLE_AGENT_POOL_MAX_SIZE (2)" in (
        result.stderr
    )


def test_the_readmes_example_config_file_is_accepted(tmp_path):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    example = readme.split("```toml\n")[1].split("```")[0]
    config = _config(tmp_path, example)
    shown = run_cli("threads", "--help", env=config)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert "alice" in example
