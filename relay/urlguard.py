"""SSRF protection: refuse to deliver to loopback, private, link-local, multicast and metadata addresses.

The check runs on the address a name resolves to at connect time (an aiohttp resolver),
not only on the URL at registration, so DNS that changes after registration cannot
point Relay at an internal service. RELAY_ALLOWED_NETWORKS opens chosen networks.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# What `relay dev` allows when RELAY_ALLOWED_NETWORKS is not set: this machine and private networks.
DEV_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


class BlockedAddress(OSError):
    """The destination resolves only to addresses Relay refuses to deliver to."""


def parse_networks(text: str) -> tuple[Network, ...]:
    """Parse comma-separated CIDRs ("127.0.0.0/8, 10.1.0.0/16")."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


class AddressPolicy:
    """Decides which destination addresses are allowed."""

    def __init__(self, allowed: tuple[Network, ...] = ()) -> None:
        self.allowed = allowed

    def permits(self, address: Address | str) -> bool:
        """Tell whether Relay may connect to `address`: public unicast, or inside an allowed network."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed if network.version == ip.version):
            return True
        return ip.is_global and not ip.is_multicast

    def check_literal(self, host: str) -> None:
        """Raise BlockedAddress if `host` is an IP literal that is not permitted (names are checked on resolve)."""
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return
        if not self.permits(ip):
            raise BlockedAddress(f"{ip} is not a public address; add it to RELAY_ALLOWED_NETWORKS to allow it")


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that drops addresses the policy refuses, and fails when none is left."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        permitted = [r for r in results if self._policy.permits(r["host"])]
        if not permitted:
            found = ", ".join(sorted({r["host"] for r in results}))
            raise BlockedAddress(
                f"{host} resolves to {found}, which Relay does not deliver to (RELAY_ALLOWED_NETWORKS)"
            )
        return permitted

    async def close(self) -> None:
        await self._inner.close()


def describe(policy: AddressPolicy) -> dict[str, Any]:
    """Return the policy for a log line."""
    return {"allowed_networks": [str(n) for n in policy.allowed] or "none (public addresses only)"}
