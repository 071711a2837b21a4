"""Cursor pagination: `{"data": [...], "next_cursor": ...}` over id-ordered lists."""

from __future__ import annotations

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


def page_of(items: list[T], rows_fetched: int, limit: int, last_id: str | None) -> Page[T]:
    """Build a page from `limit + 1` fetched rows: the extra row only says there is more."""
    has_more = rows_fetched > limit
    return Page(data=items[:limit], next_cursor=last_id if has_more else None)
