"""The one way the project reads a file it is handed (bounded, never blocking), and the
one way it replaces a file it writes (atomically).

Stack files, routes files, bridge configs, credential files and routes JSON all come
through `read_bounded`: it opens with O_NONBLOCK (a FIFO must not hang the reader),
accepts only regular files (`/dev/zero` and friends would never end), refuses files
over the caller's limit before reading them, and stops reading at the limit if the
file grows meanwhile. Errors are `UnreadableFile` with one line saying why.
`write_atomically` writes a temporary file beside the target and renames it over, so
a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from contract.errors import UnreadableFile

_CHUNK = 1 << 20


def describe_size(size: int) -> str:
    """`5 MiB`, `1.5 KiB`, `300 bytes`: for limits, which are round numbers."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def oversize_reason(size: int, limit: int, what: str) -> str:
    # Exact bytes: rounded, 5 MiB + 1 byte would read "5.0 MiB; at most 5.0 MiB".
    return f"is {size:,} bytes; a {what} may be at most {limit:,} bytes ({describe_size(limit)})"


def read_bounded(path: str | os.PathLike[str], limit: int, *, what: str = "file",
                 display: str | None = None) -> bytes:
    """The bytes of regular file `path`, at most `limit` of them; else `UnreadableFile`.

    `what` names the kind of file in messages ("stack file", "routes file").
    """
    name = display if display is not None else os.fspath(path)

    def unreadable(reason: str) -> UnreadableFile:
        return UnreadableFile(name, reason)

    def too_large(size: int) -> UnreadableFile:
        return unreadable(oversize_reason(size, limit, what))

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise unreadable("no such file") from None
    except IsADirectoryError:
        raise unreadable(f"is a directory, not a {what}") from None
    except OSError as exc:
        raise unreadable(f"cannot open it: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise unreadable(f"is a directory, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise unreadable("is not a regular file (a FIFO, socket or device?)")
        if info.st_size > limit:
            raise too_large(info.st_size)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew while we read it
            raise too_large(size)
        return b"".join(chunks)
    except OSError as exc:
        raise unreadable(f"cannot read it: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def write_atomically(path: Path, text: str, mode: int) -> None:
    """Write `text` (UTF-8) to `path` with `mode`: a temporary file in its folder,
    fsync, rename over `path`, fsync of the folder. Raises OSError."""
    folder = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
