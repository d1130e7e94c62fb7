"""What the readers share: resolving the user's path and the errors that mean "unreadable"."""
from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

from engine.data.common import resolve_path
from engine.data.progress import throttled

FILE_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, struct.error)

__all__ = ["FILE_ERRORS", "located", "throttled"]


def located(params: dict, base_dir, key: str = "path") -> tuple[Path, str]:
    """The resolved path, and the path as the user wrote it (used in messages)."""
    return resolve_path(params[key], base_dir), str(params[key])
