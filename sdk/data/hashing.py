"""Content hashes of dataset files (streamed), used as upload-cache keys and in job records."""
from __future__ import annotations

import hashlib
import os

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes as stored on disk (a `.gz` file is hashed compressed),
    read in 1 MiB chunks so memory stays flat whatever the size. Only regular files: a device
    such as /dev/zero would be read forever (DataError)."""
    from .reader import check_data_file

    h = hashlib.sha256()
    with open(check_data_file(path), "rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()
