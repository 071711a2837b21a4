"""Endpoint URLs: only what the sender's httpx-over-aiohttp client can request is accepted, normalised."""

import pytest

from relay.webhook_url import normalise_webhook_url


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://example.com/hook", "https://example.com/hook"),
        ("https://example.com", "https://example.com"),
        ("http://127.0.0.1:9000/x?y=1", "http://127.0.0.1:9000/x?y=1"),
        ("http://[::1]:8080/hook", "http://[::1]:8080/hook"),
        ("http://[::ffff:127.0.0.1]/", "http://[::ffff:127.0.0.1]/"),
        ("http://[2001:DB8:0::1]/", "http://[2001:DB8:0::1]/"),
        ("https://bücher.example/hook", "https://xn--bcher-kva.example/hook"),
        ("https://xn--bcher-kva.example/hook", "https://xn--bcher-kva.example/hook"),
        ("https://例え.テスト/", "https://xn--r8jz45g.xn--zckzah/"),
        ("https://ß.de/", "https://xn--zca.de/"),
        ("https://EXAMPLE.com/Path", "https://example.com/Path"),
        ("http://example.com:80/", "http://example.com/"),
        ("http://example.com:00080/", "http://example.com/"),
        ("http://my_service:8080/hook", "http://my_service:8080/hook"),
        ("http://localhost:3000/", "http://localhost:3000/"),
        ("https://example.com./hook", "https://example.com./hook"),
        ("https://ab--cd.example/", "https://ab--cd.example/"),
        ("https://example.com:65535/", "https://example.com:65535/"),
        ("https://example.com/é?ü=1", "https://example.com/%C3%A9?%C3%BC=1"),
        ("https://example.com/a%20b?c=%2F", "https://example.com/a%20b?c=%2F"),
        ("https://example.com/hook#part", "https://example.com/hook#part"),
    ],
)
def test_good_urls_come_back_as_the_sender_will_request_them(url: str, normalised: str) -> None:
    assert normalise_webhook_url(url) == normalised


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # control characters, whitespace and invisible characters, anywhere
        ("http://ex\x01ample.com/", "U+0001"),
        ("http://example.com/\x7f", "U+007F"),
        ("http://ex\tample.com/", "U+0009"),
        ("http://exa mple.com", "U+0020"),
        ("https://example.com/a b", "U+0020"),
        ("https://example.com/\x00", "U+0000"),
        ("https://example.com/\r\nX-Injected: 1", "U+000D"),
        ("http://ex\u00adample.com/", "U+00AD"),  # soft hyphen
        ("http://\u200bexample.com/", "U+200B"),  # zero-width space
        ("https://example.com/\u202egnp.exe", "U+202E"),  # right-to-left override
        ("http://exa\u3000mple.com/", "U+3000"),  # ideographic space
        ("https://example.com/\u00a0", "U+00A0"),  # no-break space
        ("https://example.com/\u2028", "U+2028"),
        ("https://exa\udc80mple.com/", "U+DC80"),  # a lone surrogate
        # hosts that are not valid IDNA or not a name DNS can look up
        ("http://xn--a.com/", "IDNA"),
        ("http://a.xn--abc.example/", "IDNA"),
        ("http://xn--/", "IDNA"),
        ("http://xn---bbk/", "IDNA"),  # non-canonical Punycode
        ("http://🔥.com/", "IDNA"),
        ("http://bu\u0308cher.example/", "IDNA"),  # not in Normalization Form C
        ("http://a..b/", "empty label"),
        ("http://.example.com/", "empty label"),
        ("http://./", "empty label"),
        ("http://" + "a" * 64 + ".com/", "63"),
        ("http://" + ".".join(["a" * 60] * 5) + "/", "253"),
        ("http://a!b.com/", "letters, digits"),
        ("http://ex%41mple.com/", "letters, digits"),
        ("http://a\\b/", "letters, digits"),
        ("http://-ab.com/", "letters, digits"),
        ("http://ab-.com/", "letters, digits"),
        # IPv4 spellings that getaddrinfo reads as some address the SSRF check would not see
        ("http://1.2.3/", "IPv4"),
        ("http://0x7f.1/", "IPv4"),
        ("http://2130706433/", "IPv4"),
        ("http://127.1/", "IPv4"),
        ("http://127.0.0.1./", "IPv4"),
        ("http://256.1.1.1/", "IPv4"),
        ("http://[zz]/", "IPv6"),
        ("http://[fe80::1%25eth0]/", "zone"),
        # ports
        ("http://h:99999/", "65535"),
        ("http://h:65536/", "65535"),
        ("http://h:0/", "65535"),
        ("http://example.com:-1/", "not a number"),
        ("http://example.com:+80/", "not a number"),
        ("http://example.com:8_0/", "not a number"),
        ("http://example.com:80:80/", "port"),
        ("http://example.com:٨٠/", "not a number"),
        # no host, wrong scheme
        ("http:///x", "needs a host"),
        ("https:example.com", "needs a host"),
        ("https://", "needs a host"),
        ("ftp://example.com/", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        # userinfo
        ("http://u:p@example.com/", "credentials"),
        ("http://user@example.com/", "credentials"),
        ("http://@example.com/", "credentials"),
        ("http://:@example.com/", "credentials"),
        ("http://example.com@evil.example/", "credentials"),
        ("http://a@b@c/", "credentials"),
        # escapes that the two layers of the client would read differently
        ("https://example.com/%zz", "two hexadecimal digits"),
        ("https://example.com/100%", "two hexadecimal digits"),
        ("https://example.com/" + "é" * 700, "2048"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError) as refused:
        normalise_webhook_url(url)
    assert reason in str(refused.value)


def test_the_reason_reads_as_a_clause_without_a_trailing_stop() -> None:
    with pytest.raises(ValueError) as refused:
        normalise_webhook_url("http://[zz]/")
    assert str(refused.value) == "invalid IPv6 address: '[zz]'"
