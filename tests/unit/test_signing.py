"""Signatures verify with the official standardwebhooks library, unchanged."""

import base64

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from relay.signing import new_secret, secret_key, sign, signature_header, verify


def test_secret_shape() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert new_secret() != secret


def test_signature_verifies_with_standardwebhooks() -> None:
    secret = new_secret()
    body = b'{"id":"evt_1","type":"a.b","timestamp":"2026-01-01T00:00:00.000000Z","data":{"x": 1}}'
    import time

    ts = int(time.time())
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(ts), "webhook-signature": sign(secret_key(secret), "evt_1", ts, body)}
    assert Webhook(secret).verify(body, headers) == {"id": "evt_1", "type": "a.b", "timestamp": "2026-01-01T00:00:00.000000Z", "data": {"x": 1}}


def test_tampered_body_fails_standardwebhooks() -> None:
    import time

    secret = new_secret()
    ts = int(time.time())
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(ts), "webhook-signature": sign(secret_key(secret), "evt_1", ts, b"{}")}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"x":1}', headers)


def test_multi_key_header_and_verify() -> None:
    old, new = new_secret(), new_secret()
    header = signature_header([secret_key(old), secret_key(new)], "evt_1", 1700000000, b"{}")
    assert len(header.split(" ")) == 2
    assert verify(old, "evt_1", 1700000000, b"{}", header)
    assert verify(new, "evt_1", 1700000000, b"{}", header)
    assert not verify(new_secret(), "evt_1", 1700000000, b"{}", header)


def test_legacy_signature_is_hex_hmac_of_body_with_the_secret_string() -> None:
    import hashlib
    import hmac

    from relay.signing import legacy_signature

    secret = new_secret()
    expected = hmac.new(secret.encode(), b'{"a":1}', hashlib.sha256).hexdigest()
    assert legacy_signature(secret, b'{"a":1}') == f"sha256={expected}"
