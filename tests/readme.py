"""Test utility: the shell commands the README shows, as a user would copy them."""
from __future__ import annotations

import re
from pathlib import Path
from typing import List

README = Path(__file__).resolve().parents[1] / "README.md"
_FENCED_BASH = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
# Commands quoted in the prose: the project's modules and make targets.
_INLINE = re.compile(r"`((?:python|\.venv/bin/python) -m bigcat_ml\.[^`]*|make [a-z][^`]*)`")


def _strip_comment(line: str) -> str:
    """The line without a trailing ``# comment`` (a ``#`` after white space, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def bash_commands(text: str = "") -> List[str]:
    """Every command line of the README's fenced ``bash`` blocks, comments dropped, in order."""
    text = text or README.read_text()
    commands = []
    for block in _FENCED_BASH.findall(text):
        for line in block.splitlines():
            command = _strip_comment(line)
            if command:
                commands.append(command)
    return commands


def inline_commands(text: str = "") -> List[str]:
    """Every ``python -m bigcat_ml…`` or ``make …`` command quoted in the README's prose, in order."""
    text = _FENCED_BASH.sub("", text or README.read_text())
    return list(dict.fromkeys(_INLINE.findall(text)))


def commands(text: str = "") -> List[str]:
    """The commands of the fenced ``bash`` blocks, then those quoted in the prose."""
    return bash_commands(text) + inline_commands(text)
