"""The data steward's Ed25519 signing key: load or create it, its public half, sign, verify.

Why: a hash chain shows a log was not edited *after* its head was recorded, but whoever
can edit files can also re-make a log and re-chain it. Only a signature by a key the
forger does not hold shows who made a log. The steward keeps the private key; ethics
reviewers keep (or are sent, through another channel than the run folder) the public key
and check every log against it (``postkit audit verify LOG --public-key FILE``).

Formats, chosen so a reviewer can check a log without postkit (with ``openssl``):

* **Private key**: PEM, PKCS#8, unencrypted — what ``openssl genpkey -algorithm ed25519
  -out steward.pem`` writes and what postkit writes. An unencrypted OpenSSH key
  (``ssh-keygen -t ed25519 -N ''``) and 64 hex characters (the raw 32-byte private key)
  also load. Encrypted keys are refused: postkit runs unattended. Like ssh, postkit
  refuses a key file that group or others may access (the fix: ``chmod 600 FILE``).
* **Default key**: ``signing-ed25519.pem`` in the key folder (``$POSTKIT_KEY_DIR`` or
  ``~/.config/postkit/keys``). Unlike pseudonym keys it is created once, on the first
  signed run, and reused afterwards: a steward has one signing identity, and reviewers
  keep its public key. It is created only when a run has read and decided all its
  inputs (in memory until then; see :meth:`SigningKey.persist`), 0600 in a 0700 folder.
* **Public key**: PEM SubjectPublicKeyInfo (``-----BEGIN PUBLIC KEY-----``), what
  ``openssl pkey -pubout`` writes and what OpenSSL, Python, Go and Java read.
  :func:`load_public_key` also takes an OpenSSH ``ssh-ed25519 AAAA…`` line or the raw key
  as 64 hex characters, so a reviewer may be handed the key in whichever form is easiest.
* **Fingerprint**: ``sha256:`` and the sha256 hex of the DER public key, i.e.
  ``openssl pkey -pubin -in audit.pub -outform DER | sha256sum``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import PostkitError
from .pseudonym import check_key_dir_apart, default_key_dir, prepare_key_dir

DEFAULT_SIGNING_KEY = "signing-ed25519.pem"
_MAX_KEY_FILE = 64 * 1024  # no key file is larger; refuse to read a data file given by mistake
_MAKE_ONE = "make one with `openssl genpkey -algorithm ed25519 -out steward.pem && chmod 600 steward.pem`"


def fingerprint(public: Ed25519PublicKey) -> str:
    """``sha256:`` + sha256 hex of the DER SubjectPublicKeyInfo (reproducible with openssl)."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class SigningKey:
    """A private signing key and where it lives. ``generated``: new, not yet saved to ``origin``."""

    private: Ed25519PrivateKey
    origin: Path
    generated: bool = False
    notes: list[str] = field(default_factory=list)  # things the user should be told (folder tightened, …)
    _saved: bool = field(default=False, repr=False)

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def public_pem(self) -> bytes:
        return public_pem(self.public)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    def persist(self) -> None:
        """Save a generated key to ``origin`` (0600 in a 0700 folder); a no-op for loaded keys.

        Called by the signer just before its outputs are published, so a run that fails on
        its inputs never creates a key. Written to a temporary file and hard-linked into
        place, so the key file is never seen half-written and a key another run created
        meanwhile is never overwritten (this run then stops: its log is signed by a key
        that would not be kept).
        """
        if not self.generated or self._saved:
            return
        folder = self.origin.parent
        self.notes += prepare_key_dir(folder)
        pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        temp = folder / f".{self.origin.name}.{secrets.token_hex(8)}.tmp-postkit"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temp, self.origin)
            except FileExistsError:
                raise PostkitError("another postkit run created the signing key at the same time",
                                   path=self.origin, fix="run again: the key now in place will be used") from None
        finally:
            temp.unlink(missing_ok=True)
        self._saved = True
        self.notes.append(
            f"Created your signing key {self.origin} ({self.fingerprint}). Keep it private and back it up: "
            "it is your identity as data steward. Send its public key (the .pub beside each audit log) to "
            "your ethics reviewers yourself."
        )


def _refuse_open_permissions(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PostkitError(f"signing key file is accessible to other users (mode {mode:04o})", path=path,
                           fix=f"chmod 600 {path}")


def load_signing_key(path: str | Path) -> SigningKey:
    """Load a private Ed25519 key (PEM PKCS#8, OpenSSH, or 64 hex characters) from an owner-only file."""
    path = Path(path)
    try:
        if not path.is_file():
            raise PostkitError("signing key file not found" if not path.exists() else "signing key path is not a file",
                               path=path, fix="check the path, or omit --signing-key to use your key in the key folder")
        _refuse_open_permissions(path)
        if path.stat().st_size > _MAX_KEY_FILE:
            raise PostkitError("not a signing key file (too large)", path=path, fix=_MAKE_ONE)
        data = path.read_bytes()
    except OSError as error:
        raise PostkitError(f"cannot read the signing key file: {error.strerror or error}", path=path) from None
    return SigningKey(_parse_private(data, path), path)


def _parse_private(data: bytes, path: Path) -> Ed25519PrivateKey:
    """The key in ``data``; every error names the file and never echoes its content."""
    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
            key = serialization.load_ssh_private_key(text, password=None)
        elif text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(text, password=None)
        elif len(text) == 64 and all(c in b"0123456789abcdefABCDEF" for c in text):
            key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text.decode("ascii")))
        else:
            raise PostkitError("not a signing key file (expected a PEM private key)", path=path, fix=_MAKE_ONE)
    except TypeError:  # cryptography: "Password was not given but private key is encrypted"
        raise PostkitError("the signing key file is encrypted; postkit needs an unencrypted key", path=path,
                           fix=f"keep it in an owner-only file instead (chmod 600), or {_MAKE_ONE}") from None
    except (ValueError, UnsupportedAlgorithm):
        raise PostkitError("cannot read the signing key (not a valid private key)", path=path, fix=_MAKE_ONE) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PostkitError("the signing key is not an Ed25519 key", path=path, fix=_MAKE_ONE)
    return key


def resolve_signing_key(key_file: str | Path | None = None, *, outputs: Sequence[str | Path] = ()) -> SigningKey:
    """The key from ``--signing-key``, else the key folder's (``signing-ed25519.pem``), else a new one.

    A new key is only held in memory: :meth:`SigningKey.persist` saves it once the run
    has succeeded. The key folder must not be (or contain) an output's folder: whoever
    receives the outputs must not also receive the key.
    """
    if key_file is not None:
        check_key_dir_apart(Path(key_file).parent, outputs,  # never publish the private key with the log
                            fix="keep the signing key in a private folder away from the outputs")
        return load_signing_key(key_file)
    folder = default_key_dir()
    check_key_dir_apart(folder, outputs)
    path = folder.resolve() / DEFAULT_SIGNING_KEY
    if path.exists():
        notes = prepare_key_dir(path.parent)
        key = load_signing_key(path)
        key.notes += notes
        return key
    return SigningKey(Ed25519PrivateKey.generate(), path, generated=True)


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """A reviewer's copy of the steward's public key: PEM, an ``ssh-ed25519`` line, or 64 hex characters."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > _MAX_KEY_FILE:
            raise PostkitError("not a public key file (too large)", path=path)
        data = path.read_bytes().strip()
    except FileNotFoundError:
        raise PostkitError("public key file not found", path=path, fix="check the path") from None
    except OSError as error:
        raise PostkitError(f"cannot read the public key file: {error.strerror or error}", path=path) from None
    if b"PRIVATE KEY" in data:
        raise PostkitError("this is a private key, not a public key", path=path,
                           fix="pass the public key (the .pub file); never hand out the private key")
    try:
        if data.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        elif data.startswith(b"ssh-"):
            key = serialization.load_ssh_public_key(data)
        elif len(data) == 64 and all(c in b"0123456789abcdefABCDEF" for c in data):
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(data.decode("ascii")))
        else:
            raise ValueError
    except (ValueError, UnsupportedAlgorithm):
        raise PostkitError("not a public key file (expected PEM, an ssh-ed25519 line or 64 hex characters)",
                           path=path, fix="pass the data steward's public key (the .pub file)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise PostkitError("the public key is not an Ed25519 key", path=path,
                           fix="pass the data steward's Ed25519 public key (the .pub file)")
    return key


def verify(public: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    """Does the base64 ``signature_b64`` sign ``message`` under ``public``?"""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def encode_signature(signature: bytes) -> str:
    return base64.b64encode(signature).decode("ascii")

