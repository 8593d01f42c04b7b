"""Test utility: the shell commands the README shows, as a user would copy them."""
from __future__ import annotations

import re
from pathlib import Path
from typing import List

README = Path(__file__).resolve().parents[1] / "README.md"
_FENCED_BASH = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


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
