"""A node's credentials, kept between runs in <CCN_HOME>/node/<name>.json, readable only by
its owner (0600, in a 0700 directory).

The file is written before the first registration with only the edge URL, an Idempotency-Key
and the node's signing key (the private half of the public key it registers), so a node that
dies between sending the registration and storing the reply registers again under the same key
(with the same public key) and gets the same node back instead of a second one. Tokens and the
signing key never reach a log line or a repr."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ccn_core.atomic_files import write_atomic
from ccn_core.receipts import new_private_key, private_key

FILE_MODE = 0o600
DIR_MODE = 0o700
MAX_FILE_BYTES = 64 * 1024


class CredentialsError(Exception):
    """The stored credentials cannot be used; the message names the file."""


class NodeCredentials(msgspec.Struct, frozen=True, kw_only=True):
    edge_url: str
    idempotency_key: str
    node_public_id: str | None = None
    api_token: str | None = None
    session_token: str | None = None
    consent_version: str | None = None
    # the node's Ed25519 private key (unpadded base64url), made with the file and registered
    # with the node: its results are signed with it. None: a node registered before keys, whose
    # results go unsigned (a node's key is not rotated: a new key is a new node)
    signing_key: str | None = None

    @property
    def registered(self) -> bool:
        return self.node_public_id is not None and self.api_token is not None

    def __repr__(self) -> str:
        return f"NodeCredentials(edge_url={self.edge_url!r}, node_public_id={self.node_public_id!r}, tokens hidden)"


def new_credentials(edge_url: str) -> NodeCredentials:
    return NodeCredentials(edge_url=edge_url, idempotency_key=uuid.uuid4().hex, signing_key=new_private_key())


def signing_key(credentials: NodeCredentials) -> Ed25519PrivateKey | None:
    """The key the node signs its results with; None when it registered none. CredentialsError
    when the stored one is not a key."""
    if credentials.signing_key is None:
        return None
    try:
        return private_key(credentials.signing_key)
    except ValueError:
        raise CredentialsError("the stored signing_key is not an Ed25519 private key") from None


def credentials_path(home: Path, name: str) -> Path:
    return home / "node" / f"{name}.json"


def load_credentials(path: Path) -> NodeCredentials | None:
    """The stored credentials, None when there are none. A file others can read is tightened
    to 0600 first: its tokens may already have leaked, but they will not go on leaking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise CredentialsError(f"{path} is not a regular file")
        if stat.S_IMODE(mode) & 0o077:
            os.fchmod(file.fileno(), FILE_MODE)
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise CredentialsError(f"{path} is larger than {MAX_FILE_BYTES} bytes; it is not a node's credentials")
    try:
        return msgspec.json.decode(data, type=NodeCredentials)
    except msgspec.DecodeError as exc:
        raise CredentialsError(
            f"{path} is not a node credentials file ({exc}); move it aside to register anew"
        ) from None


def save_credentials(path: Path, credentials: NodeCredentials) -> None:
    """Atomically: a crash leaves the old file or the new one, never half of either."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    write_atomic(path, msgspec.json.format(msgspec.json.encode(credentials)), FILE_MODE)
