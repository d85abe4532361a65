"""asr.files: a write either lands whole under the final name or leaves the old file as it was."""

from pathlib import Path

import pytest

from asr.files import atomic_path, write_text


def test_atomic_path_replaces_on_success_and_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    assert write_text(out, "old\n") == out
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".m.jsonl.") and tmp.suffix == ".jsonl"
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert out.read_text() == "old\n"
    with atomic_path(out) as tmp:
        assert not out.read_text().startswith("new")  # nothing lands before the block ends
        tmp.write_text("new\n")
    assert out.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]  # no temporary file left
