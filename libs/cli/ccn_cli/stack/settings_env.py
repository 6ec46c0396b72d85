"""Settings back to CCN_* variables, for the service processes: the inverse of settings_from_env.

Every field follows one convention, `home` -> CCN_HOME, `edge_port` -> CCN_EDGE_PORT; a test
round-trips a Settings with every field set, so a new field cannot be silently dropped.
"""

from __future__ import annotations

import msgspec

from ccn_core.settings import Settings


def env_var(field: str) -> str:
    return f"CCN_{field.upper()}"


def settings_to_env(settings: Settings) -> dict[str, str]:
    env: dict[str, str] = {}
    for field in msgspec.structs.fields(Settings):
        value = getattr(settings, field.name)
        if value is None or value == "":
            continue  # settings_from_env reads a missing and an empty variable alike: the default
        env[env_var(field.name)] = str(value)
    return env
