"""Atomic file writes: a reader, or a kill, never sees a file half-written.

Every file the project writes (results tables, the journal's companions, checkpoints, reports,
figures) goes through ``atomic_write``: the content is written to a private temporary file in the
same directory, flushed to disk, and renamed over the target in one step.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["atomic_write", "atomic_write_text", "atomic_dir", "check_writable_dir", "check_writable_file",
           "first_missing"]


def first_missing(path: str | Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what creating it makes), or None."""
    path = Path(path).absolute()
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def check_writable_dir(path: str | Path, field: str) -> None:
    """Refuse a folder that cannot be created or written: ``path`` or one of its parents is a
    file, or the nearest existing folder refuses a new entry (tried with a temporary folder,
    removed at once). Raises ArchScaleError(``field``) on one line; writes nothing that stays."""
    from .errors import ArchScaleError

    path = Path(path).absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = f"{path} is a file" if existing == path else f"{existing} is a file, so {path} cannot be made"
        raise ArchScaleError(field, f"{what}; name a folder")
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".archscale-probe-"))
    except OSError as e:
        raise ArchScaleError(field, f"{path} cannot be written ({e.strerror} in {existing}); name a folder you "
                                    f"can write") from None


def check_writable_file(path: str | Path, field: str) -> None:
    """Refuse a file path that names a folder, or whose folder cannot be created or written
    (``check_writable_dir``). Raises ArchScaleError(``field``) on one line."""
    from .errors import ArchScaleError

    path = Path(path)
    if path.is_dir():
        raise ArchScaleError(field, f"{path} is a folder; name a file (e.g. {path / 'next.yaml'})")
    check_writable_dir(path.parent, field)


def _publish(tmp: str | Path, path: str | Path) -> None:
    """Move a finished temporary file into place, readable as a plain new file would be (mkstemp
    makes it private, 0600; results on a shared cluster are read by others)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def atomic_write(path: str | Path, write: Callable[[str], None], *, fsync: bool = True) -> Path:
    """Write ``path`` by calling ``write(tmp_path)`` on a temporary file, then renaming it into place.

    ``write`` must write the whole file at the path it is given (``df.to_parquet``, ``torch.save``,
    ``fig.savefig(..., format=...)``: the temporary name ends in ``.tmp``, so pass the format
    where it is inferred from the suffix). Returns ``path``. On any error the temporary file is
    removed and the old ``path``, if any, is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        _publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a whole directory, then swap it in for ``path`` in one step.

    Yields a fresh temporary directory beside ``path``; when the block ends without an error it
    replaces ``path`` (the old directory, if any, is removed after the swap). On an error the
    temporary directory is removed and ``path`` is left as it was. What a killed writer on this
    host left beside ``path`` is removed first (its temporary names carry the host and process id).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    prefix = f".{path.name}.{_HOST}.{os.getpid()}."
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=prefix, suffix=".tmp"))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=prefix, suffix=".old"))
            os.rmdir(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


_HOST = socket.gethostname().replace(".", "_")


def _remove_orphans(path: Path) -> None:
    """Remove ``atomic_dir`` temporaries beside ``path`` whose writer (a process of this host) is gone."""
    for p in path.parent.glob(f".{glob.escape(path.name)}.{glob.escape(_HOST)}.*"):
        pid = p.name[len(f".{path.name}.{_HOST}."):].split(".", 1)[0]
        if p.suffix in (".tmp", ".old") and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
