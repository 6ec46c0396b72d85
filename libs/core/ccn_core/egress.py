"""The egress decision: may the fetch proxy connect for this URL, and to which addresses.

`decide_egress(url, resolve)` is pure apart from the injected `resolve` (host → IP strings; it
may raise). It is two steps a service can also take apart around an asynchronous resolver:
`check_url` reads the URL strictly (http and https only, no userinfo, allowed ports, a host that
is a valid name or an IP literal in any spelling) and refuses names that are never public
(single labels, which resolvers complete with search domains, and special-use top-level
domains); `check_answers` refuses unless every address the name resolved to is globally
routable, so a name with one private answer among public ones is refused, and says which
addresses to connect to. The fetcher connects to exactly those, never resolving again, which is
what makes DNS rebinding useless; and it builds its request from the `Target`'s parts, never from
the original string, so no second URL parser can read the URL differently.

A development allowance names host:port pairs (a local fixture web) whose loopback answers are
accepted; it is empty by default, and the service logs loudly when it is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Literal
from urllib.parse import quote

import msgspec

from ccn_core.ip_ranges import IPAddress, connect_form, non_global_reason, parse_address
from ccn_core.url_host import BadHost, Host, parse_host, split_port

MAX_URL_LENGTH = 8192
MAX_ANSWERS = 64
DEFAULT_PORTS = {"http": 80, "https": 443}
# top-level names that are never public (RFC 6761, 6762, 7686, 8375, 9476; ICANN's .internal)
SPECIAL_USE_SUFFIXES = ("localhost", "local", "internal", "home.arpa", "arpa", "onion", "invalid", "test", "alt")

RefusalCode = Literal[
    "malformed_url",
    "scheme_not_allowed",
    "userinfo",
    "port_not_allowed",
    "bad_host",
    "special_use_name",
    "ip_literal",
    "non_global_address",
    "resolution_failed",
]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31}):")
# C0 controls, space, DEL and backslash: browsers strip or reinterpret them, so a URL holding
# one means different things to different parsers
_AMBIGUOUS = re.compile(r"[\x00-\x20\x7f\\]")
_PORT = re.compile(r"[0-9]{1,5}")
_LOOPBACK_V4 = IPv4Network("127.0.0.0/8")
# what may stand unescaped in a request target: visible ASCII but '#'
_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "#%") + "%"


class EgressPolicy(msgspec.Struct, frozen=True, kw_only=True):
    allowed_ports: frozenset[int] = frozenset({80, 443})
    # a URL naming an IP address rather than a domain is refused even when the address is public:
    # the allow-list is of domains, and CC-54 blocks IP hosts
    allow_ip_literals: bool = False
    # development only: (host, port) pairs whose loopback answers are accepted
    loopback_allowance: frozenset[tuple[str, int]] = frozenset()


DEFAULT_POLICY = EgressPolicy()


class Target(msgspec.Struct, frozen=True):
    """What a request goes to: built from these parts, never from the URL as it was given."""

    scheme: Literal["http", "https"]
    host: Host
    port: int
    request_target: str  # path and query, ASCII, percent-encoded; never a fragment

    @property
    def authority(self) -> str:
        """Host header value: the port only when it is not the scheme's default."""
        if self.port == DEFAULT_PORTS[self.scheme]:
            return self.host.url_form
        return f"{self.host.url_form}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.request_target}"


class Allowed(msgspec.Struct, frozen=True):
    target: Target
    addresses: tuple[str, ...]  # every one checked; connect to these and nothing else


class Refused(msgspec.Struct, frozen=True):
    code: RefusalCode
    reason: str


Resolve = Callable[[str], Iterable[str]]


def decide_egress(url: str, resolve: Resolve, policy: EgressPolicy = DEFAULT_POLICY) -> Allowed | Refused:
    checked = check_url(url, policy)
    if isinstance(checked, Refused):
        return checked
    if checked.host.address is not None:
        return check_answers(checked, [str(checked.host.address)], policy)
    try:
        answers = list(_bounded(resolve(checked.host.name)))
    except Exception as error:  # the resolver is outside: any failure is a refusal, never a crash
        return Refused(
            "resolution_failed", f"{checked.host.name} did not resolve: {type(error).__name__}: {error!s:.200}"
        )
    return check_answers(checked, answers, policy)


def check_url(url: str, policy: EgressPolicy = DEFAULT_POLICY) -> Target | Refused:
    """Everything that can be decided before resolving the host."""
    if not isinstance(url, str) or not url:
        return Refused("malformed_url", "the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        return Refused("malformed_url", f"the URL is longer than {MAX_URL_LENGTH} characters")
    ambiguous = _AMBIGUOUS.search(url)
    if ambiguous is not None:
        return Refused("malformed_url", f"the URL holds {ambiguous.group()!r} at offset {ambiguous.start()}")
    scheme_match = _SCHEME.match(url)
    if scheme_match is None:
        return Refused("malformed_url", "the URL has no scheme")
    scheme = scheme_match.group(1).lower()
    if scheme == "http":
        return _check_http_url("http", url[scheme_match.end() :], policy)
    if scheme == "https":
        return _check_http_url("https", url[scheme_match.end() :], policy)
    return Refused("scheme_not_allowed", f"scheme {scheme!r} is not http or https")


def _check_http_url(scheme: Literal["http", "https"], rest: str, policy: EgressPolicy) -> Target | Refused:
    if not rest.startswith("//"):
        return Refused("malformed_url", "an http(s) URL must have '//' after the scheme")
    authority, path_and_more = _split_authority(rest[2:])
    if "@" in authority:
        return Refused("userinfo", "credentials in the URL (userinfo) are refused")
    split = _split_port(authority, DEFAULT_PORTS[scheme])
    if isinstance(split, Refused):
        return split
    written_host, port = split
    try:
        host = parse_host(written_host)
    except BadHost as error:
        return Refused("bad_host", str(error))
    target = Target(scheme, host, port, _request_target(path_and_more))
    allowance = (host.name, port) in policy.loopback_allowance
    if not allowance:
        refused = _refused_host(host, port, policy)
        if refused is not None:
            return refused
    return target


def check_answers(target: Target, answers: Sequence[str], policy: EgressPolicy = DEFAULT_POLICY) -> Allowed | Refused:
    """Every answer must be globally routable: one bad answer refuses the name."""
    name = target.host.name
    if not answers:
        return Refused("resolution_failed", f"{name} resolved to no address")
    if len(answers) > MAX_ANSWERS:
        return Refused("resolution_failed", f"{name} resolved to more than {MAX_ANSWERS} addresses")
    allowance = (name, target.port) in policy.loopback_allowance
    addresses: list[str] = []
    for answer in answers:
        address = parse_address(answer) if isinstance(answer, str) else None
        if address is None:
            return Refused("resolution_failed", f"{name} resolved to something that is not an address: {answer!r:.80}")
        reason = None if allowance and _is_loopback(address) else non_global_reason(address)
        if reason is not None:
            return Refused("non_global_address", f"{name} resolves to {reason}")
        text = str(connect_form(address))
        if text not in addresses:
            addresses.append(text)
    return Allowed(target, tuple(addresses))


def _refused_host(host: Host, port: int, policy: EgressPolicy) -> Refused | None:
    if port not in policy.allowed_ports:
        return Refused("port_not_allowed", f"port {port} is not allowed")
    if host.address is not None:
        reason = non_global_reason(host.address)
        if reason is not None:
            spelled = "" if host.written == host.name else f" (written {host.written!r})"
            return Refused("non_global_address", f"the host is {reason}{spelled}")
        if not policy.allow_ip_literals:
            return Refused("ip_literal", f"the host is an IP address ({host.name}), not a domain")
        return None
    if "." not in host.name:
        return Refused("special_use_name", f"{host.name!r} is a single-label name (resolvers complete it locally)")
    for suffix in SPECIAL_USE_SUFFIXES:
        if host.name == suffix or host.name.endswith("." + suffix):
            return Refused("special_use_name", f"{host.name!r} is under the special-use name .{suffix}")
    return None


def _split_authority(after_slashes: str) -> tuple[str, str]:
    for index, char in enumerate(after_slashes):
        if char in "/?#":
            return after_slashes[:index], after_slashes[index:]
    return after_slashes, ""


def _split_port(authority: str, default_port: int) -> tuple[str, int] | Refused:
    try:
        host, port_text = split_port(authority)
    except BadHost as error:
        return Refused("bad_host", str(error))
    if port_text is None:
        return host, default_port
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        return Refused("malformed_url", f"the port {port_text[:20]!r} is not a number from 1 to 65535")
    return host, int(port_text)


def _request_target(path_and_more: str) -> str:
    without_fragment = path_and_more.partition("#")[0]
    if not without_fragment.startswith("/"):
        without_fragment = "/" + without_fragment
    # non-ASCII goes as UTF-8 escapes; what is already escaped stays as it is
    return quote(without_fragment, safe=_TARGET_SAFE)


def _is_loopback(address: IPAddress) -> bool:
    address = connect_form(address)
    if isinstance(address, IPv4Address):
        return address in _LOOPBACK_V4
    return address == IPv6Address("::1")


def _bounded(answers: Iterable[str]) -> Iterable[str]:
    """At most one past the limit is read, so a hostile resolver cannot make us hold millions."""
    for index, answer in enumerate(answers):
        yield answer
        if index >= MAX_ANSWERS:
            return
