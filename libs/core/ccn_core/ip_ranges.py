"""Which IP addresses the fetch proxy may connect to: globally routable unicast only.

The ranges are written out from the IANA special-purpose address registries (RFC 6890 and its
updates) rather than taken from `ipaddress.is_global`, whose answers have changed between Python
releases; each carries the name a refusal gives. IPv6 addresses that carry an IPv4 address
(IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) are judged by what they carry, since a
packet to them ends at that IPv4 address. Anything outside IPv6 global unicast (2000::/3) that is
not one of those is refused, so a range added to the registry later is refused until reviewed.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

# cloud instance metadata services: the first thing an SSRF goes for, so named as such
METADATA_ADDRESSES: dict[IPAddress, str] = {
    IPv4Address("169.254.169.254"): "cloud metadata (AWS, GCP, Azure, OpenStack)",
    IPv4Address("169.254.170.2"): "cloud metadata (AWS ECS task)",
    IPv4Address("169.254.169.253"): "cloud resolver (AWS)",
    IPv4Address("100.100.100.200"): "cloud metadata (Alibaba)",
    IPv4Address("192.0.0.192"): "cloud metadata (Oracle)",
    IPv6Address("fd00:ec2::254"): "cloud metadata (AWS IPv6)",
    IPv6Address("fd00:ec2::23"): "cloud resolver (AWS IPv6)",
}

_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), name)
    for net, name in (
        ("255.255.255.255/32", "broadcast"),
        ("0.0.0.0/8", "unspecified ('this network')"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT (shared address space)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("192.88.99.0/24", "reserved (former 6to4 relay anycast)"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    )
)

_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), name)
    for net, name in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("100:0:0:1::/64", "dummy prefix"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("2001:2::/48", "benchmarking"),
        ("2001::/23", "IETF protocol assignments"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_IPV4_COMPATIBLE = IPv6Network("::/96")
_UNSPECIFIED_OR_LOOPBACK = (IPv6Address("::"), IPv6Address("::1"))
_NAT64 = IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")
_TEREDO = IPv6Network("2001::/32")


def non_global_reason(address: IPAddress) -> str | None:
    """Why `address` must not be connected to (its kind and the address), or None if it is a
    globally routable unicast address."""
    if address in METADATA_ADDRESSES:
        return f"{METADATA_ADDRESSES[address]} {address}"
    if isinstance(address, IPv4Address):
        for network, name in _V4:
            if address in network:
                return f"{name} {address}"
        return None
    return _ipv6_reason(address)


def _ipv6_reason(address: IPv6Address) -> str | None:
    mapped = address.ipv4_mapped
    if mapped is not None:
        return _carried("IPv4-mapped", address, mapped)
    if address in _IPV4_COMPATIBLE and address not in _UNSPECIFIED_OR_LOOPBACK:
        embedded = IPv4Address(address.packed[12:])
        carried = non_global_reason(embedded)
        # deprecated (RFC 4291) and never a real destination, whatever it carries
        return f"IPv4-compatible {address}" + (f" carrying {carried}" if carried else " (deprecated)")
    if address in _NAT64:
        return _carried("NAT64", address, IPv4Address(address.packed[12:]))
    if address in _SIX_TO_FOUR:
        return _carried("6to4", address, IPv4Address(address.packed[2:6]))
    if address in _TEREDO:
        server = IPv4Address(address.packed[4:8])
        client = IPv4Address(bytes(b ^ 0xFF for b in address.packed[12:16]))
        return _carried("Teredo (server)", address, server) or _carried("Teredo (client)", address, client)
    for network, name in _V6:
        if address in network:
            return f"{name} {address}"
    if address not in _GLOBAL_UNICAST:
        return f"not global unicast {address}"
    return None


def _carried(kind: str, address: IPv6Address, embedded: IPv4Address) -> str | None:
    reason = non_global_reason(embedded)
    return None if reason is None else f"{kind} {address} carrying {reason}"


def connect_form(address: IPAddress) -> IPAddress:
    """The address a socket should be given: an IPv4-mapped IPv6 address is its IPv4 address."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_address(text: str) -> IPAddress | None:
    """An address as a resolver returned it, or None when it is not one (a scoped IPv6
    address, which names an interface of ours, is not one either)."""
    if "%" in text or len(text) > 45:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
