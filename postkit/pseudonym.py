"""Keyed pseudonyms for user ids, and the private key folder.

The audit log (and later the de-identified export) must let a reviewer see that two
posts came from the same person without revealing who: HMAC-SHA256 under a secret
key does that, and unlike a plain hash it cannot be reversed by hashing a list of
known user ids. The key never goes into any output; its *id* (an HMAC of a fixed
label) does, so a reviewer can tell whether two logs used the same key.

Keys, and why:

* **Generated only after the inputs validate.** :func:`resolve_key` returns a new key
  in memory (``generated=True``); the caller calls :meth:`PseudonymKey.persist` just
  before it publishes its outputs. A run that fails on its inputs leaves no key file,
  and no stray key that later runs would not reuse.
* **The key folder** (``$POSTKIT_KEY_DIR`` or ``~/.config/postkit/keys``) is created
  0700, key files 0600. An existing key folder that group or others can reach is
  *tightened* to 0700 when postkit writes or reads a key there, and the user is told
  (:func:`prepare_key_dir` returns the note). Tightening rather than refusing: folders
  made by earlier postkit versions were 0755, and a key folder has no reason to be shared.
* **Weak keys are refused** (:func:`check_key_strength`). A key is hex (decoded: 64 hex
  characters are 32 bytes) or else the UTF-8 bytes of its text. It needs at least 16
  bytes, at least 10 different byte values, no byte value in more than a quarter of its
  bytes, no repeating pattern (``passwordpassword``) and no run of evenly spaced bytes
  (``abcdefghijklmnop``). This screens out made-up and placeholder keys; it is not a
  strength meter, so make keys with ``secrets.token_hex(32)``. None of 200,000 random
  16-byte keys failed it (tests/test_keys.py draws a few thousand). Messages name
  where the key came from and never show any of it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .errors import PostkitError

KEY_ENV = "POSTKIT_PSEUDONYM_KEY"
KEY_DIR_ENV = "POSTKIT_KEY_DIR"
_MIN_KEY_BYTES = 16
_MAX_KEY_BYTES = 1024
_MIN_DISTINCT_BYTES = 10
MAKE_KEY = "python -c 'import secrets; print(secrets.token_hex(32))'"


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes
    origin: str  # where it came from, for messages: a path, or the env variable name
    generated: bool = False  # new: held in memory until persist() saves it to ``origin``

    @property
    def key_id(self) -> str:
        return hmac.new(self.secret, b"postkit key id", hashlib.sha256).hexdigest()[:16]

    def persist(self) -> list[str]:
        """Save a generated key to ``origin`` (0600, in a 0700 folder); returns notes for the user.

        Call it just before publishing the outputs the key made. Idempotent, and a
        no-op for a key that was read from a file or the environment.
        """
        if not self.generated:
            return []
        path = Path(self.origin)
        notes = prepare_key_dir(path.parent)
        try:
            # Created with owner-only permissions from the start (not chmod-ed afterwards).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return notes  # persisted already (the name is derived from the key itself)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.secret.hex() + "\n")
        return notes


def _weakness(secret: bytes) -> str | None:
    """Why ``secret`` does not look random, or None. See the module docstring for the rules."""
    n = len(secret)
    counts = Counter(secret)
    if len(counts) < _MIN_DISTINCT_BYTES:
        return f"it has only {len(counts)} different byte values"
    if max(counts.values()) * 4 > n:
        return "one byte value makes up more than a quarter of it"
    for period in range(1, n // 2 + 1):
        if secret[period:] == secret[:-period]:
            return f"it repeats a pattern of {period} bytes"
    steps = Counter((b - a) % 256 for a, b in zip(secret, secret[1:]))
    if max(steps.values()) * 2 > n - 1:
        return "it is mostly a run of evenly spaced characters (like abcdef… or 0123…)"
    return None


def check_key_strength(secret: bytes, origin: str) -> None:
    """Refuse a key under 16 random-looking bytes, saying how to make a good one."""
    fix = f"make a random key with `{MAKE_KEY}`"
    if len(secret) < _MIN_KEY_BYTES:
        raise PostkitError(f"pseudonym key from {origin} is too short ({len(secret)} bytes; at least "
                           f"{_MIN_KEY_BYTES} random bytes, i.e. {2 * _MIN_KEY_BYTES} hex characters)", fix=fix)
    if len(secret) > _MAX_KEY_BYTES:
        raise PostkitError(f"pseudonym key from {origin} is too long to be a key ({len(secret)} bytes)",
                           fix=f"check the file is a key; {fix}")
    weakness = _weakness(secret)
    if weakness:
        raise PostkitError(f"pseudonym key from {origin} does not look random: {weakness}", fix=fix)


def _decode_key(text: str, origin: str) -> bytes:
    text = text.strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = text.encode("utf-8")
    check_key_strength(secret, origin)
    return secret


def default_key_dir() -> Path:
    if os.environ.get(KEY_DIR_ENV):
        return Path(os.environ[KEY_DIR_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "postkit" / "keys"


def prepare_key_dir(folder: Path) -> list[str]:
    """Create ``folder`` owner-only (0700), or tighten it to 0700 if group/others can reach it.

    Returns a note for the user when an existing folder was tightened.
    """
    folder = Path(folder)
    try:
        if not folder.exists():
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
            os.chmod(folder, 0o700)  # mkdir's mode passes through the umask
            return []
        mode = stat.S_IMODE(folder.stat().st_mode)
        if mode & 0o077:
            os.chmod(folder, 0o700)
            return [f"Key folder {folder} was open to other users (mode {mode:04o}); postkit set it to 0700"]
    except OSError as error:
        raise PostkitError(f"cannot make the key folder private: {error.strerror or error}", path=folder,
                           fix=f"chmod 700 {folder}, or set {KEY_DIR_ENV} to a private folder you own") from None
    return []


def check_key_dir_apart(folder: Path, outputs: Sequence[str | Path], fix: str | None = None) -> None:
    """Refuse a key folder that is, contains or sits in an output's folder."""
    folder = Path(folder).resolve()
    for output in outputs:
        out = Path(output).resolve()
        if folder == out.parent or folder == out or out in folder.parents:
            raise PostkitError(
                f"the key folder {folder} is next to the output {out}",
                fix=fix or f"set {KEY_DIR_ENV} to a private folder elsewhere, or pass the key file explicitly",
            )


def resolve_key(key_file: str | Path | None, *, outputs: Sequence[str | Path] = ()) -> PseudonymKey:
    """The key from ``--key-file``, else ``$POSTKIT_PSEUDONYM_KEY``, else a new key (in memory).

    A new key is saved by :meth:`PseudonymKey.persist` into the user's key folder
    (``$POSTKIT_KEY_DIR`` or ``~/.config/postkit/keys``), never beside an output:
    whoever receives the outputs must not also receive the key that links pseudonyms
    back to users.
    """
    if key_file is not None:
        path = Path(key_file)
        try:
            if path.is_file() and path.stat().st_size > 4 * _MAX_KEY_BYTES:
                raise PostkitError("not a key file (too large)", path=path, fix=f"make a key with `{MAKE_KEY}`")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PostkitError("key file not found", path=path,
                               fix="check the path, or omit --key-file to generate a key") from None
        except UnicodeDecodeError:
            raise PostkitError("key file is not text", path=path,
                               fix=f"write the key as hex, e.g. the output of `{MAKE_KEY}`") from None
        except OSError as exc:
            raise PostkitError(f"cannot read key file: {exc.strerror or exc}", path=path) from None
        return PseudonymKey(_decode_key(text, str(path)), str(path))
    if os.environ.get(KEY_ENV):
        return PseudonymKey(_decode_key(os.environ[KEY_ENV], f"${KEY_ENV}"), f"${KEY_ENV}")
    return _new_key(outputs)


def _new_key(outputs: Sequence[str | Path]) -> PseudonymKey:
    folder = default_key_dir().resolve()
    check_key_dir_apart(folder, outputs)
    secret = secrets.token_bytes(32)
    key_id = PseudonymKey(secret, "").key_id
    return PseudonymKey(secret, str(folder / f"pseudonym-{key_id}.key"), generated=True)


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
