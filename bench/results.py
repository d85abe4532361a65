"""bench/RESULTS.md: each benchmark owns one ``## `` section and replaces only that."""

from __future__ import annotations

import argparse
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


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """``rows`` under ``header`` as a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def publish(section: str, caption: str, header: list[str], rows: list[list[str]], path: Path = RESULTS) -> None:
    """Print ``caption`` and a Markdown table of ``rows`` under ``header``, and write them as
    the ``section`` of ``path``."""
    table = f"{caption}\n\n{markdown_table(header, rows)}"
    print("\n" + table)
    write_section(section, table, path)
    print(f"\nwrote {path}")


def model_parser(doc: str) -> argparse.ArgumentParser:
    """Options of a benchmark over a trained recipe model: ``--data``, ``--model``, ``--out``;
    the description is the first paragraph of ``doc``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/synthetic-demo"), help="the recipe's data folder")
    parser.add_argument("--model", default="bilstm", help="experiment folder under DATA/exp")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser
