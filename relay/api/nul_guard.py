"""Refuse JSON bodies holding a NUL character (U+0000): PostgreSQL can store it in no text or jsonb column."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request

from relay.api.errors import Problem

_WRITES = frozenset({"POST", "PUT", "PATCH"})


def nul_path(value: Any, path: str = "$") -> str | None:
    """Return the JSON path of the first key or string value holding U+0000, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if "\x00" in key:
                return where
            found = nul_path(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


async def refuse_nul_characters(request: Request[Any, Any, Any]) -> None:
    """Answer 422 naming the field when a JSON body holds U+0000 anywhere (keys included).

    A cheap byte search first: only a body with the escape (or a raw NUL byte) is decoded
    to find where it is. The body stays cached for the handler.
    """
    if request.method not in _WRITES:
        return
    body = await request.body()
    if b"\\u0000" not in body and b"\x00" not in body:
        return
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return  # not JSON: the handler's own validation answers
    where = nul_path(decoded)
    if where:
        where = where.replace("\x00", "\\u0000")  # a key may hold it too: name it, do not echo it
        raise Problem(422, f"{where} contains a NUL character (\\u0000), which cannot be stored.", field=where)
