"""The README's Python examples run as written, each in a new process."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_python_examples_run_in_order_and_share_the_thread(tmp_path):
    """Each block runs in a fresh process; a block gets the previous one's last line as argv[1]."""
    blocks = _blocks("python")
    assert len(blocks) == 3
    previous_line: list[str] = []
    outputs = []
    for block in blocks:
        result = subprocess.run(
            [sys.executable, "-c", block, *previous_line],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{block}\n{result.stderr}"
        outputs.append(result.stdout)
        previous_line = result.stdout.strip().splitlines()[-1:]
    history = outputs[1]
    assert "ai: (offline model) 12*7 = 84." in history
    assert "ai: (offline model) 84/4 = 21." in history
    assert history.count("human: ") == 2
    assert history.strip().splitlines()[-1].endswith(" done 8 Arithmetic")
    resumed = outputs[2]
    assert "waiting [\"May I remember this about you: 'I like tea'?\"]" in resumed
    assert resumed.strip().splitlines()[-1] == "{'fact': 'I like tea'}"


def test_ci_runs_the_readme_commands():
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    for name in ("install-and-run", "test"):
        assert f"<!-- ci:{name} -->\n```sh\n" in README.read_text()
        assert f"readme_command {name})" in ci
