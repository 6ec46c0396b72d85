"""A URL's host read the way a browser or an HTTP client would read it, so that what we check
is what would be connected to.

Parser confusion is the oldest SSRF trick: `http://0x7f.1/`, `http://2130706433/`,
the same in full-width digits and `http://[::ffff:127.0.0.1]/` all reach the loopback address, and a
checker that reads them as names lets them through. So the host is read as the WHATWG URL
standard reads it: non-ASCII is mapped by UTS #46 (which turns full-width digits and ideographic
full stops into ASCII) before anything else; then a host whose last label is a number is an IPv4
address in any of inet_aton's forms (one to four parts, each decimal, octal with a leading 0, or
hex with 0x; the last part fills the remaining bytes), and one that does not parse as such is
refused rather than handed to a resolver that might read it differently. Anything outside
letters, digits, hyphen and underscore in a name is refused outright, percent-encoding and IPv6
zone identifiers included.
"""

from __future__ import annotations

import ipaddress
import re

import idna
import msgspec

MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_NUMBER_LIKE = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)")
_DECIMAL = re.compile(r"[0-9]+")
_OCTAL = re.compile(r"0[0-7]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]*")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BadHost(ValueError):
    """The host cannot be read as a name or an address; the message says why."""


class Host(msgspec.Struct, frozen=True):
    """`name` is the ASCII form (lowercase, punycode, no trailing dot); `address` is set when
    the host is an IP literal in any spelling, and `name` is then its canonical text."""

    name: str
    address: IPAddress | None = None
    written: str = ""  # the host as the URL spelled it, for messages

    @property
    def url_form(self) -> str:
        """The host as it goes back into a URL: IPv6 in brackets."""
        if isinstance(self.address, ipaddress.IPv6Address):
            return f"[{self.address.compressed}]"
        return self.name


def parse_host(written: str) -> Host:
    """Read a URL's host (as it appears between `//` and the port). Raises BadHost."""
    if not written:
        raise BadHost("the URL has no host")
    if len(written) > MAX_HOST_LENGTH + 2:
        raise BadHost(f"the host is longer than {MAX_HOST_LENGTH} characters")
    if written.startswith("["):
        address6 = _ipv6_literal(written)
        return Host(name=address6.compressed, address=address6, written=written)
    if "%" in written:
        # browsers percent-decode a host before reading it; nothing legitimate needs that
        raise BadHost(f"percent-encoding in the host {written!r}")
    ascii_host = written if written.isascii() else _uts46(written)
    lowered = ascii_host.lower()
    name = lowered[:-1] if lowered.endswith(".") else lowered
    if not name:
        raise BadHost(f"the host {written!r} is empty")
    labels = name.split(".")
    if _NUMBER_LIKE.fullmatch(labels[-1]):
        address = _numeric_ipv4(labels, written)
        return Host(name=str(address), address=address, written=written)
    if len(name) > MAX_HOST_LENGTH:
        raise BadHost(f"the host is longer than {MAX_HOST_LENGTH} characters")
    for label in labels:
        if not label:
            raise BadHost(f"the host {written!r} has an empty label")
        if len(label) > MAX_LABEL_LENGTH or not _LABEL.fullmatch(label):
            raise BadHost(f"the host {written!r} has an invalid label {label[:70]!r}")
        if label.startswith("xn--"):
            _check_punycode(label, written)
    return Host(name=name, written=written)


def split_port(authority: str) -> tuple[str, str | None]:
    """The host and the port text (None when there is no ':') of a URL's authority, userinfo
    already refused. Raises BadHost for anything after an IPv6 literal but a port."""
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            return authority, None  # parse_host says what is wrong with it
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            raise BadHost(f"unexpected {after[:20]!r} after the IPv6 host")
        return host, after[1:] if after else None
    host, colon, port = authority.partition(":")
    return host, port if colon else None


def _uts46(written: str) -> str:
    try:
        return idna.encode(written, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as error:
        raise BadHost(f"the host {written!r} is not a valid internationalised name: {error}") from None


def _check_punycode(label: str, written: str) -> None:
    try:
        idna.decode(label)
    except (idna.IDNAError, UnicodeError, ValueError):
        raise BadHost(f"the host {written!r} has an invalid punycode label {label!r}") from None


def _ipv6_literal(written: str) -> ipaddress.IPv6Address:
    if not written.endswith("]"):
        raise BadHost(f"the IPv6 host {written!r} has no closing bracket")
    inner = written[1:-1]
    # a zone identifier (fe80::1%25eth0) names an interface of *our* machine
    if "%" in inner or not inner or len(inner) > 45:
        raise BadHost(f"the IPv6 host {written!r} is not an address")
    try:
        return ipaddress.IPv6Address(inner)
    except ValueError:
        raise BadHost(f"the IPv6 host {written!r} is not an address") from None


def _numeric_ipv4(labels: list[str], written: str) -> ipaddress.IPv4Address:
    """inet_aton's forms, as the WHATWG URL standard reads them."""
    if len(labels) > 4:
        raise BadHost(f"the host {written!r} ends in a number but is not an IPv4 address")
    parts = [_ipv4_part(label, written) for label in labels]
    *leading, last = parts
    if any(part > 255 for part in leading) or last >= 256 ** (5 - len(parts)):
        raise BadHost(f"the host {written!r} is an IPv4 address out of range")
    value = last
    for index, part in enumerate(leading):
        value += part << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_part(label: str, written: str) -> int:
    if not label:
        raise BadHost(f"the host {written!r} has an empty label")
    if len(label) > 40:  # 2**32 in octal is 12 digits; leading zeros beyond this are a game
        raise BadHost(f"the host {written!r} has an overlong number")
    if _HEX.fullmatch(label):
        return int(label[2:] or "0", 16)
    if label == "0" or (_DECIMAL.fullmatch(label) and not label.startswith("0")):
        return int(label)
    if _OCTAL.fullmatch(label) or re.fullmatch(r"0+", label):
        return int(label, 8)
    raise BadHost(f"the host {written!r} has a part {label[:20]!r} that is not a number")
