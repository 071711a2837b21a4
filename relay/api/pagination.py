"""Cursor pagination: `{"data": [...], "next_cursor": ...}` over id-ordered lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

T = TypeVar("T")

Limit = Annotated[int, QueryParameter(ge=1, le=250, description="Page size (1-250).")]
Cursor = Annotated[str | None, QueryParameter(max_length=64, description="`next_cursor` of the previous page.")]


class Page(msgspec.Struct, Generic[T]):
    """One page of a list."""

    data: list[T]
    next_cursor: str | None


def page_of(items: list[T], limit: int, cursor_of: Callable[[T], str] = lambda item: item.id) -> Page[T]:  # type: ignore[attr-defined]
    """Build a page from `limit + 1` fetched items: the extra item only says there is more."""
    data = items[:limit]
    return Page(data=data, next_cursor=cursor_of(data[-1]) if len(items) > limit else None)
