"""The fenced code blocks of the project's documents, which tests/test_docs.py and
tests/test_doc_commands.py run: each block's language, place and text, and why it is not
run when the line before it says so (``<!-- not run: why -->``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "clients" / "js" / "README.md"]
ADMIN_TOKEN = "docs-admin-token-0123456789"  # the admin token the examples may name
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_NOT_RUN = re.compile(r"<!-- not run: (.+?) -->\s*$")


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    language: str
    code: str
    not_run: str | None  # why, for a sketch

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def blocks(document: Path, languages: set[str]) -> list[Block]:
    """The blocks of ``document`` in ``languages``, in order."""
    text = document.read_text()
    found = []
    for m in _FENCE.finditer(text):
        if m.group(1) not in languages:
            continue
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _NOT_RUN.search(before)
        found.append(Block(document, line, m.group(1), m.group(2), mark.group(1).strip() if mark else None))
    return found
