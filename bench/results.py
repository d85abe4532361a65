"""bench/RESULTS.md: each benchmark owns one ``## `` section and replaces only that."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def write_section(section: str, table: str, path: Path = RESULTS) -> None:
    """Replace the ``section`` heading's block of ``path`` (or append it), keeping the others."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"{re.escape(section)}\n.*?(?=\n## |\Z)", re.DOTALL)
    block = f"{section}\n\n{table}\n"
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
