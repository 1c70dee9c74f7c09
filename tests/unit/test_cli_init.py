"""fraudops.cli: each command's module is imported when that command is used, and the root
still lists, documents and suggests every command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import COMMANDS, GROUPS, app

SRC = Path(__file__).resolve().parents[2] / "src"


def _imported_commands(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys\n"
        "print(sorted(m for m in sys.modules if m.startswith('fraudops.cli.') and 'cmd' in m))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return list(eval(done.stdout.strip().splitlines()[-1]))


def test_the_root_imports_no_command_and_a_command_only_its_own() -> None:
    assert _imported_commands("import fraudops.cli") == []
    run_config = (
        "import sys\nfrom fraudops.cli import main\nsys.argv = ['fraudops', 'config', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert _imported_commands(run_config) == ["fraudops.cli.config_cmd"]


def test_help_lists_every_command_in_order_with_its_help() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    listed = [
        line.split()[1]
        for line in result.output.split("Commands")[1].splitlines()
        if line.startswith("│ ") and line[2:3].isalpha()  # not a wrapped help line
    ]
    assert listed == [*COMMANDS, *GROUPS]
    assert "Score every row of a file with a registered model" in result.output
    assert "Registered model versions and the `champion` alias." in result.output


@pytest.mark.parametrize("name", [*COMMANDS, *GROUPS])
def test_each_command_loads(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"fraudops {name}" in result.output


def test_a_typo_is_answered_with_the_closest_commands() -> None:
    result = CliRunner().invoke(app, ["scor"])
    assert result.exit_code == 2
    assert "No such command 'scor'. Did you mean 'score'?" in result.output
    result = CliRunner().invoke(app, ["nothing-like-it"])
    assert result.exit_code == 2 and "No such command 'nothing-like-it'." in result.output
