"""The README's command table matches ``cdr-platform --help``: every command and flag it shows exists,
and every command the CLI has is in the table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cdr_platform.cli import build_parser

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"


def _command_rows() -> list[str]:
    text = README.read_text()
    table = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    return [line for line in table.splitlines() if line.startswith("| `")]


def _help(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*words, "--help"])
    return capsys.readouterr().out


def test_every_command_and_flag_in_the_readme_exists(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _command_rows()
    assert rows, "README.md has no command table under '## Command line'"
    for row in rows:
        first_cell = row.split(" | ")[0]
        for usage in re.findall(r"`([^`]+)`", first_cell):
            words = usage.replace("\\|", "|").split()
            command, rest = words[0], words[1:]
            text = _help(capsys, command)
            if rest and re.fullmatch(r"[a-z]+", rest[0]):  # a sub-action, e.g. `streams request`
                text += _help(capsys, command, rest[0])
            for flag in re.findall(r"--[a-z][a-z-]*", usage):
                assert flag in text, f"README shows `{flag}` for `{command}`, which its --help lacks"
            for choice in re.findall(r"\b([a-z]+) \|", usage.replace("\\|", "|")):
                assert choice in text, f"README shows `{choice}` for `{command}`, which its --help lacks"


def test_every_cli_command_is_in_the_readme(capsys: pytest.CaptureFixture[str]) -> None:
    documented = {
        usage.split()[0] for row in _command_rows() for usage in re.findall(r"`([^`]+)`", row.split(" | ")[0])
    }
    listed = re.findall(r"^    (\w+)\s", _help(capsys), flags=re.MULTILINE)
    assert listed and set(listed) <= documented, f"missing from README: {sorted(set(listed) - documented)}"
