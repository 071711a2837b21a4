"""The SSRF policy: which destination addresses Relay connects to (F18)."""

import asyncio

import pytest

from relay.urlguard import AddressPolicy, BlockedAddress, GuardedResolver, parse_networks


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "::1", "fc00::1", "fe80::1", "::ffff:127.0.0.1", "224.0.0.1", "255.255.255.255"],
)
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    assert not AddressPolicy().permits(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert AddressPolicy().permits(address)


def test_allow_list_opens_only_the_listed_networks() -> None:
    policy = AddressPolicy(parse_networks("127.0.0.0/8, 10.1.0.0/16"))
    assert policy.permits("127.0.0.1") and policy.permits("10.1.2.3") and policy.permits("::ffff:127.0.0.1")
    assert not policy.permits("10.2.0.1") and not policy.permits("169.254.169.254")


def test_literals_are_checked_names_are_left_to_the_resolver() -> None:
    policy = AddressPolicy()
    with pytest.raises(BlockedAddress, match="RELAY_ALLOWED_NETWORKS"):
        policy.check_literal("127.0.0.1")
    with pytest.raises(BlockedAddress):
        policy.check_literal("[::1]")
    policy.check_literal("example.com")  # names are checked on the address they resolve to


def test_resolver_refuses_a_name_that_resolves_to_loopback() -> None:
    async def resolve(policy: AddressPolicy):
        resolver = GuardedResolver(policy)
        try:
            return await resolver.resolve("localhost", 80)
        finally:
            await resolver.close()

    with pytest.raises(BlockedAddress, match="127.0.0.1"):
        asyncio.run(resolve(AddressPolicy()))
    allowed = asyncio.run(resolve(AddressPolicy(parse_networks("127.0.0.0/8"))))
    assert {r["host"] for r in allowed} == {"127.0.0.1"}


def test_bad_allow_list_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse_networks("not-a-network")
