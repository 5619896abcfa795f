"""Which addresses the bridge may fetch remote media from (server-side request forgery guard).

Any remote user can hand the bridge a URL (an XMPP ``jabber:x:oob`` link, an avatar). Fetched
blindly, a link to ``http://127.0.0.1:<port>/`` or a cloud metadata address would post the
bridge's or the homeserver's private answers into a public room. As Synapse's URL previewer
does, every name is resolved first and refused if *any* of its addresses is loopback, private,
link-local, multicast, reserved or unspecified (IPv4 and IPv6, with the IPv4 forms hidden in
IPv6: mapped, 6to4, Teredo, NAT64), unless the operator's allow-list (``media.allow``) names it.
:class:`GuardedResolver` hands aiohttp only the addresses it checked, so the connection goes
to the address that was checked (a second DNS answer cannot rebind it).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedAddress(Exception):
    """The URL's host is (or resolves to) an address the bridge must not fetch from."""


@dataclass(frozen=True)
class AllowEntry:
    network: IPNetwork
    port: int | None = None

    def matches(self, ip: IPAddress, port: int) -> bool:
        return ip in self.network and (self.port is None or self.port == port)


def parse_allow_entry(entry: str) -> AllowEntry:
    """``10.0.0.0/8``, ``127.0.0.1:8080``, ``[::1]:8080``, ``[fd00::/8]`` or ``::1``.

    Raises ValueError with a reason fit for the config error."""
    text = entry.strip()
    port: int | None = None
    if text.startswith("["):
        net, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError("a '[' without its ']'")
        if rest:
            if not rest.startswith(":"):
                raise ValueError("after ']' only ':<port>' may follow")
            port = _port(rest[1:])
    elif text.count(":") == 1:  # IPv4 (or CIDR) with a port
        net, _, raw_port = text.partition(":")
        port = _port(raw_port)
    else:
        net = text
    try:
        network = ipaddress.ip_network(net, strict=False)
    except ValueError as e:
        raise ValueError(f"not an IP address or CIDR: {net!r}") from e
    return AllowEntry(network, port)


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"not a port number: {raw!r}")
    return int(raw)


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address routes to (6to4, Teredo, NAT64)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_refused_ip(ip: IPAddress) -> bool:
    """True for every address that is not plainly public unicast."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return True  # fe80::1%eth0 and the like
        if ip.ipv4_mapped is not None:  # the IPv4 address itself, in IPv6 clothing
            return is_refused_ip(ip.ipv4_mapped)
        if any(is_refused_ip(v4) for v4 in _embedded_v4(ip)):
            return True
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


class AddressPolicy:
    """The refusal rules plus the operator's allow-list."""

    def __init__(self, allow: list[str] | tuple[str, ...] = ()) -> None:
        self.allow = [parse_allow_entry(e) for e in allow]

    def allowed(self, ip: IPAddress, port: int) -> bool:
        if any(entry.matches(ip, port) for entry in self.allow):
            return True
        return not is_refused_ip(ip)

    def check_literal(self, host: str, port: int) -> None:
        """Raise if ``host`` is an IP literal that is refused (aiohttp does not resolve
        literals, so the resolver never sees them)."""
        ip = _ip_or_none(host)
        if ip is not None and not self.allowed(ip, port):
            raise RefusedAddress(f"{host} is not a public address")


def _ip_or_none(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver, then refuses the name if any address is
    refused; aiohttp connects only to the addresses returned here."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            ip = ipaddress.ip_address(str(result["host"]))
            if not self.policy.allowed(ip, port):
                raise RefusedAddress(f"{host} resolves to {result['host']}, not a public address")
        if not results:
            raise RefusedAddress(f"{host} has no address")
        return results

    async def close(self) -> None:
        await self.inner.close()
