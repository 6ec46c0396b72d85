"""Database URL handling: a URL printed for an operator never shows its password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database (the URL's path names the database)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))
