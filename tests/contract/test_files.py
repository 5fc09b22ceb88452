"""contract.files.write_atomically: a real file in tmp_path replaced whole, with its mode.

(`read_bounded` is tested through its readers: the stack, routes and token files.)"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from contract.files import write_atomically


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_a_file_is_written_with_its_mode_and_nothing_left_beside_it(
    tmp_path: Path, mode: int
) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old\n", encoding="utf-8")
    write_atomically(path, "new ✓\n", mode)
    assert path.read_text(encoding="utf-8") == "new ✓\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(path, "half \udc80", 0o644)  # a lone surrogate: not UTF-8
    assert path.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_missing_folder_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "nope" / "out.txt", "x", 0o644)
