"""Content hashes for manifests and audit logs.

A reviewer must be able to recompute these with standard tools, so a file's hash is
plain ``sha256sum``; a directory (a Hugging Face ``save_to_disk`` folder) hashes the
sorted list of its files' relative paths and hashes, so it does not depend on
file-system order or timestamps.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_path(path: str | Path) -> str:
    """sha256 of a file, or of a directory tree (relative path + file hash per file)."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = child.relative_to(path).as_posix()
            digest.update(f"{rel}\0{sha256_file(child)}\n".encode())
        return digest.hexdigest()
    return sha256_file(path)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
