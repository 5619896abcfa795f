"""The address rules of the remote media fetcher: what is refused, and the allow-list."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from bridgekit.matrix.netguard import (
    AddressPolicy,
    GuardedResolver,
    RefusedAddress,
    is_refused_ip,
    parse_allow_entry,
)

REFUSED = [
    "127.0.0.1",
    "127.1.2.3",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "169.254.169.254",  # cloud metadata
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "198.18.0.1",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "::127.0.0.1",  # IPv4-compatible (deprecated)
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert is_refused_ip(ipaddress.ip_address(address))
    with pytest.raises(RefusedAddress):
        AddressPolicy().check_literal(address, 80)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address: str) -> None:
    assert not is_refused_ip(ipaddress.ip_address(address))
    AddressPolicy().check_literal(address, 443)


def test_names_are_left_to_the_resolver() -> None:
    AddressPolicy().check_literal("example.org", 80)  # not a literal: no decision here


def test_allow_list_by_address_cidr_and_port() -> None:
    policy = AddressPolicy(["127.0.0.1:8080", "10.0.0.0/8", "[::1]:9000", "[fd00::/8]"])
    ip = ipaddress.ip_address
    assert policy.allowed(ip("127.0.0.1"), 8080)
    assert not policy.allowed(ip("127.0.0.1"), 8081)  # another port of the same host
    assert not policy.allowed(ip("127.0.0.2"), 8080)
    assert policy.allowed(ip("10.200.1.1"), 1)
    assert policy.allowed(ip("::1"), 9000) and not policy.allowed(ip("::1"), 9001)
    assert policy.allowed(ip("fd00::5"), 443)
    assert not policy.allowed(ip("192.168.0.1"), 80)
    assert policy.allowed(ip("8.8.8.8"), 80)  # public stays allowed


@pytest.mark.parametrize(
    "entry", ["intranet", "10.0.0.0/33", "127.0.0.1:0", "127.0.0.1:x", "[::1", "[::1]x", "::1:"]
)
def test_bad_allow_entries_say_why(entry: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_allow_entry(entry)


class _Answers:
    """A resolver stub answering fixed addresses (what a hostile DNS would say)."""

    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list:
        return [
            {"hostname": host, "host": h, "port": port, "family": 0, "proto": 0, "flags": 0}
            for h in self.hosts
        ]

    async def close(self) -> None:
        pass


async def test_a_name_with_any_refused_address_is_refused() -> None:
    policy = AddressPolicy()
    ok = GuardedResolver(policy, _Answers("93.184.216.34"))  # type: ignore[arg-type]
    assert [r["host"] for r in await ok.resolve("example.org", 80)] == ["93.184.216.34"]
    mixed = GuardedResolver(policy, _Answers("93.184.216.34", "127.0.0.1"))  # type: ignore[arg-type]
    with pytest.raises(RefusedAddress):
        await mixed.resolve("rebind.example", 80)
    mapped = GuardedResolver(policy, _Answers("::ffff:10.0.0.1"))  # type: ignore[arg-type]
    with pytest.raises(RefusedAddress):
        await mapped.resolve("mapped.example", 80)


async def test_localhost_by_name_is_refused_unless_allowed() -> None:
    with pytest.raises(RefusedAddress):
        await GuardedResolver(AddressPolicy()).resolve("localhost", 80)
    allowed = GuardedResolver(AddressPolicy(["127.0.0.0/8", "::1"]))
    assert await allowed.resolve("localhost", 80)
