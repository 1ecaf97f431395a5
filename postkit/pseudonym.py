"""Keyed pseudonyms for user ids.

The audit log (and later the de-identified export) must let a reviewer see that two
posts came from the same person without revealing who: HMAC-SHA256 under a secret
key does that, and unlike a plain hash it cannot be reversed by hashing a list of
known user ids. The key never goes into any output; its *id* (an HMAC of a fixed
label) does, so a reviewer can tell whether two logs used the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .errors import PostkitError

KEY_ENV = "POSTKIT_PSEUDONYM_KEY"
KEY_DIR_ENV = "POSTKIT_KEY_DIR"
_MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes
    origin: str  # where it came from, for messages: a path, or the env variable name
    generated: bool = False

    @property
    def key_id(self) -> str:
        return hmac.new(self.secret, b"postkit key id", hashlib.sha256).hexdigest()[:16]


def _decode_key(text: str, origin: str) -> bytes:
    text = text.strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = text.encode("utf-8")
    if len(secret) < _MIN_KEY_BYTES:
        raise PostkitError(
            f"pseudonym key from {origin} is too short ({len(secret)} bytes)",
            fix=f"use at least {_MIN_KEY_BYTES} bytes, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`",
        )
    return secret


def default_key_dir() -> Path:
    if os.environ.get(KEY_DIR_ENV):
        return Path(os.environ[KEY_DIR_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "postkit" / "keys"


def resolve_key(key_file: str | Path | None, *, outputs: Sequence[str | Path] = ()) -> PseudonymKey:
    """The key from ``--key-file``, else ``$POSTKIT_PSEUDONYM_KEY``, else a new key file.

    A generated key is written to the user's key folder (``$POSTKIT_KEY_DIR`` or
    ``~/.config/postkit/keys``), never beside an output: whoever receives the
    outputs must not also receive the key that links pseudonyms back to users.
    """
    if key_file is not None:
        path = Path(key_file)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PostkitError("key file not found", path=path,
                               fix="check the path, or omit --key-file to generate a key") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PostkitError(f"cannot read key file ({exc})", path=path) from None
        return PseudonymKey(_decode_key(text, str(path)), str(path))
    if os.environ.get(KEY_ENV):
        return PseudonymKey(_decode_key(os.environ[KEY_ENV], f"${KEY_ENV}"), f"${KEY_ENV}")
    return _generate_key(outputs)


def _generate_key(outputs: Sequence[str | Path]) -> PseudonymKey:
    folder = default_key_dir().resolve()
    for output in outputs:
        out = Path(output).resolve()
        if folder == out.parent or folder == out or out in folder.parents:
            raise PostkitError(
                f"the key folder {folder} is next to the output {out}",
                fix=f"set {KEY_DIR_ENV} to a private folder elsewhere, or pass --key-file",
            )
    folder.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    key = PseudonymKey(secret, "", generated=True)
    path = folder / f"pseudonym-{key.key_id}.key"
    # Created with owner-only permissions from the start (not chmod-ed afterwards).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret.hex() + "\n")
    return PseudonymKey(secret, str(path), generated=True)


class Pseudonymizer:
    """Maps a value to a stable keyed pseudonym, e.g. ``user_3f9a…``."""

    def __init__(self, key: PseudonymKey, prefix: str = "user", length: int = 16) -> None:
        self._key = key.secret
        self.prefix = prefix
        self.length = length
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        cached = self._cache.get(value)
        if cached is None:
            digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
            cached = f"{self.prefix}_{digest[: self.length]}"
            if len(self._cache) < 2_000_000:
                self._cache[value] = cached
        return cached
