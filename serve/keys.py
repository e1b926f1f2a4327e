"""Secret keys of the platform (audit MAC, API token hashing) and owner-only state files.

A key comes from, in order: the environment variable named for it (hex or base64, at least 32 bytes; in
production a Kubernetes secret, see ``infra/terraform``), a file named by ``<VAR>_FILE``, or a file in
``<ssz_home>/keys/<name>.key`` created (0600, in a 0700 folder) on first use. The key folder is never the
folder of the data it protects: the audit logs live in ``<ssz_home>/serve`` and ``<ssz_home>/alerts``, so a
copy of those folders carries no key, and a person who can rewrite a log cannot recompute its MACs
unless they also hold the key (the anchors and the mirror in the locked bucket catch that case too).

:func:`write_private` is how every state file of the platform is written: created 0600, replaced atomically.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path

from serve.face.paths import ssz_home

MIN_KEY_BYTES = 32


class KeyConfigError(RuntimeError):
    """A configured key is unusable (too short, not hex/base64, unreadable file); the message says what to do."""


def _decode(text: str, where: str) -> bytes:
    t = text.strip()
    try:
        raw = bytes.fromhex(t)
    except ValueError:
        try:
            raw = base64.b64decode(t, validate=True)
        except (binascii.Error, ValueError) as e:
            raise KeyConfigError(f"{where} is neither hex nor base64: generate one with "
                            "`python -c 'import secrets; print(secrets.token_hex(32))'`") from e
    if len(raw) < MIN_KEY_BYTES:
        raise KeyConfigError(f"{where} holds {len(raw)} bytes; a key needs at least {MIN_KEY_BYTES}")
    return raw


def key_dir() -> Path:
    """``<ssz_home>/keys`` (0700), created on first use."""
    d = ssz_home() / "keys"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    return d


def load_key(name: str, env: str) -> bytes:
    """The secret key ``name``: ``$env``, the file ``$env_FILE``, or ``<ssz_home>/keys/<name>.key`` (made once).

    Raises
    ------
    KeyConfigError
        When the configured key is malformed or shorter than 32 bytes.
    """
    if os.environ.get(env):
        return _decode(os.environ[env], f"${env}")
    file_var = f"{env}_FILE"
    if os.environ.get(file_var):
        p = Path(os.environ[file_var])
        try:
            return _decode(p.read_text(), f"{p} (${file_var})")
        except OSError as e:
            raise KeyConfigError(f"cannot read the key file {p} named by ${file_var}: {e}") from e
    p = key_dir() / f"{name}.key"
    if not p.exists():
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            write_private(p, secrets.token_hex(MIN_KEY_BYTES).encode(), exclusive=True)
    return _decode(p.read_text(), str(p))


def write_private(path: str | os.PathLike[str], data: bytes, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` as an owner-only (0600) file, atomically (temporary file + rename).

    With ``exclusive`` the file must not exist yet (``FileExistsError`` otherwise), for keys made once.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, p)  # atomic, and fails when the file exists: readers never see it half written
        else:
            tmp.replace(p)
    finally:
        tmp.unlink(missing_ok=True)
