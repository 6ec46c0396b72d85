"""The development loopback allowance, read from its setting: `host:port` pairs, comma-separated
(`grants.localhost:8421,foundation.localhost:8421`), whose loopback answers the egress policy
accepts. Off (empty) by default; the service logs a warning naming every pair when it is on."""

from __future__ import annotations

from ccn_core.settings import SettingsError
from ccn_core.url_host import BadHost, parse_host

MAX_PAIRS = 64


def parse_loopback_allowance(text: str) -> frozenset[tuple[str, int]]:
    pairs: set[tuple[str, int]] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, sep, port_text = item.rpartition(":")
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SettingsError(f"CCN_FETCH_DEV_LOOPBACK: {item[:80]!r} is not host:port")
        try:
            name = parse_host(host).name
        except BadHost as error:
            raise SettingsError(f"CCN_FETCH_DEV_LOOPBACK: {item[:80]!r}: {error}") from None
        pairs.add((name, int(port_text)))
    if len(pairs) > MAX_PAIRS:
        raise SettingsError(f"CCN_FETCH_DEV_LOOPBACK names more than {MAX_PAIRS} pairs")
    return frozenset(pairs)
