"""The delivered body: the Standard Webhooks envelope around the payload's exact bytes."""

from __future__ import annotations

from datetime import datetime

import msgspec


def build_envelope(event_id: str, event_type: str, created_at: datetime, payload: bytes) -> bytes:
    """Return `{"id","type","timestamp","data"}` with `data` being `payload` byte for byte."""
    timestamp = created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return b"".join(
        (
            b'{"id":',
            msgspec.json.encode(event_id),
            b',"type":',
            msgspec.json.encode(event_type),
            b',"timestamp":"',
            timestamp.encode(),
            b'","data":',
            payload,
            b"}",
        )
    )


class _Envelope(msgspec.Struct):
    data: msgspec.Raw


def payload_of(body: bytes) -> msgspec.Raw:
    """Return the `data` of a stored envelope, undecoded."""
    return msgspec.json.decode(body, type=_Envelope).data
