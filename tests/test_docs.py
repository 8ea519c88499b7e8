"""The README documents every command, shows the real --help, and the real exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler import cli as cli_module
from crawler.cli import cli

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def help_text(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=100, prog_name="refgraph")
    assert result.exit_code == 0
    return result.output


def test_readme_usage_is_the_real_help():
    block = README.split("<!-- usage:")[1].split("```")[1]
    assert block.lstrip("\n") == help_text()


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_an_example_and_a_readme_section(command):
    text = help_text(command)
    assert "Example:" in text
    section = README.split(f"### `refgraph {command}`")
    assert len(section) == 2, f"README has no section for {command}"
    body = section[1].split("\n### ")[0]
    assert f"refgraph {command}" in body.split("\n\n", 1)[1]  # a copy-paste example


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_option_is_documented_in_its_readme_section(command):
    body = README.split(f"### `refgraph {command}`")[1].split("\n### ")[0].split("\n## ")[0]
    shared = README.split("## Usage")[1].split("### ")[0]  # options every query command takes
    for param in cli.commands[command].params:
        for flag in [o for o in param.opts if o.startswith("--") and o != "--help"]:
            assert flag in body or flag in shared, f"{flag} of {command} is not in the README"


def test_exit_code_table_matches_the_code():
    table = README.split("<!-- exit codes:")[1].split("\n## ")[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.M)}
    actual = {v for k, v in vars(cli_module).items() if k.startswith("EXIT_")}
    assert documented == actual == {0, 1, 2, 3, 130}


def test_the_console_script_gives_one_line_usage_errors():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "crawler", "impact", "not-a-node", "--db", "x.db"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: Invalid value for 'NODE': expected media:ID or document:ID, got 'not-a-node' "
        "(see refgraph impact --help)"]
