"""Endpoint URLs: accept only what the sender's HTTP client (httpx over aiohttp) can request, normalised."""

from __future__ import annotations

import ipaddress
import re
import unicodedata

import httpx
import idna
import yarl

MAX_LENGTH = 2048
SCHEMES = ("http", "https")

# Control, invisible-format (zero-width, bidi overrides, soft hyphen), surrogate and separator characters:
# httpx refuses some and percent-encodes others, so the URL sent would not be the URL the user read.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})
# A DNS label as resolvers take it; the underscore stays because container and service names use it.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# A last label like this makes the host an IPv4 address (WHATWG), and getaddrinfo reads `127.1` or
# `0x7f.1` as 127.0.0.1: only the canonical dotted quad is let through, where the SSRF check can see it.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_AUTHORITY = re.compile(r"[^:/?#]+://([^/?#]*)")


def normalise_webhook_url(url: str) -> str:
    """Return `url` as the sender will request it, or raise ValueError saying what is wrong with it."""
    _check_characters(url)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise ValueError(_as_clause(exc)) from None
    if parsed.scheme not in SCHEMES:
        raise ValueError("it must start with http:// or https://")
    authority = _AUTHORITY.match(url)
    if not parsed.raw_host or authority is None:
        raise ValueError("it needs a host")
    if parsed.userinfo or "@" in authority.group(1):
        raise ValueError("put credentials in custom headers, not in the URL")
    _check_port(authority.group(1), parsed.port)
    _check_host(parsed.raw_host.decode("ascii"))
    if _BAD_ESCAPE.search(url):
        raise ValueError("a '%' must be followed by two hexadecimal digits")
    normalised = str(parsed)
    if len(normalised) > MAX_LENGTH:
        raise ValueError(f"it is longer than {MAX_LENGTH} characters once encoded")
    _check_aiohttp_agrees(normalised, parsed)
    return normalised


def _check_characters(url: str) -> None:
    for position, char in enumerate(url):
        if char.isspace() or unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise ValueError(
                f"it contains a control, space or invisible character (U+{ord(char):04X}) at position {position}"
            )


def _check_port(authority: str, port: int | None) -> None:
    # httpx reads the port with int(), which also takes "+80" and "8_0"; a port is digits only.
    after_host = authority.rpartition("]")[2] if authority.startswith("[") else authority
    port_text = after_host.partition(":")[2]
    if port_text and not (port_text.isascii() and port_text.isdigit()):
        raise ValueError(f"the port {port_text!r} is not a number")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"the port {port} is not between 1 and 65535")


def _check_host(host: str) -> None:
    """Raise ValueError unless `host` (as httpx encodes it) is an IP address or a name DNS can look up."""
    if ":" in host:  # httpx has checked the bracketed address already
        if "%" in host:
            raise ValueError("IPv6 zone identifiers are not supported")
        return
    labels = host.removesuffix(".").split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"the host {host!r} is not a valid IPv4 address") from None
        return
    if len(host.removesuffix(".")) > 253:
        raise ValueError("the host name is longer than 253 characters")
    for label in labels:
        if not label:
            raise ValueError(f"the host {host!r} has an empty label")
        if len(label) > 63:
            raise ValueError(f"the host {host!r} has a label longer than 63 characters")
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except idna.IDNAError as exc:
                raise ValueError(f"{label!r} is not a valid internationalised (IDNA) label: {exc}") from None
        elif not _LABEL.fullmatch(label):
            raise ValueError(
                f"the host {host!r} may hold only letters, digits, '-' and '_' in dot-separated labels "
                "that do not start or end with '-'"
            )


def _check_aiohttp_agrees(normalised: str, parsed: httpx.URL) -> None:
    # The aiohttp transport parses httpx's string again with yarl; both must name the same destination.
    try:
        reread = yarl.URL(normalised)
        same = (
            reread.scheme == parsed.scheme
            and _same_host(reread.raw_host or "", parsed.raw_host.decode("ascii"))
            and reread.port == (parsed.port or (443 if parsed.scheme == "https" else 80))
            and not reread.raw_user
        )
    except ValueError as exc:
        raise ValueError(f"the HTTP client cannot read it: {_as_clause(exc)}") from None
    if not same:
        raise ValueError("the HTTP client's two parsers read different destinations in it")


def _same_host(reread: str, host: str) -> bool:
    # yarl compresses IPv6 addresses ("::ffff:127.0.0.1" becomes "::ffff:7f00:1"); the address is what counts.
    if ":" in host:
        return ":" in reread and ipaddress.IPv6Address(reread) == ipaddress.IPv6Address(host)
    return reread.lower() == host


def _as_clause(exc: Exception) -> str:
    # The clients' messages ("Invalid port: 'x'.") go inside a sentence of ours.
    text = str(exc).rstrip(".")
    return text[:1].lower() + text[1:]
