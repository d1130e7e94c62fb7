"""Writing export results so that nothing half-written is ever left behind.

Every exporter writes into a temporary file or folder next to its target and renames it into
place only once everything is written and checked; on any failure the temporary is removed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import ExportError

MARKER = "exported by Layerlab"  # first line of a python export's model.py


@contextmanager
def staged_file(target: str | os.PathLike):
    """Yield a temporary path beside ``target``; it becomes ``target`` if the block succeeds."""
    target = Path(target)
    _check_parent(target)
    if target.is_dir():
        raise ExportError(f"{target}: is a folder; give a file name, e.g. "
                          f"{target / 'model'}{target.suffix or '.pt'}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise _unwritable(target, exc) from None
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _unwritable(target, exc) from None
        raise


@contextmanager
def staged_folder(target: str | os.PathLike):
    """Yield a temporary folder beside ``target``; it becomes ``target`` if the block succeeds.

    An existing ``target`` is replaced only when it is empty or an earlier python export.
    """
    target = Path(target)
    _check_parent(target)
    _check_replaceable(target)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise _unwritable(target, exc) from None
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        _swap_in(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _unwritable(target, exc) from None
        raise


def _swap_in(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rename(target, old / "previous")
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(old / "previous", target)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _check_parent(target: Path) -> None:
    parent = target.parent
    if not parent.exists():
        raise ExportError(f"{target}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise ExportError(f"{target}: {parent} is not a folder")


def _check_replaceable(target: Path) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise ExportError(f"{target}: is a file; the python format writes a folder")
    entries = list(target.iterdir())
    if entries and not _is_python_export(target):
        raise ExportError(f"{target}: the folder exists and is not empty; choose a new folder "
                          "(an earlier python export there would be replaced)")


def _is_python_export(folder: Path) -> bool:
    try:
        with open(folder / "model.py", encoding="utf-8") as fh:
            return MARKER in fh.readline()
    except OSError:
        return False


def _unwritable(target: Path, exc: OSError) -> ExportError:
    return ExportError(f"{target}: cannot be written ({exc.strerror or exc})")
