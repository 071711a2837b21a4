"""Shape database rows into API Structs: only the fields the Struct declares go out."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

S = TypeVar("S", bound=msgspec.Struct)


def from_row(cls: type[S], row: dict[str, Any], **given: Any) -> S:
    """Build `cls` from the row's columns of the same names; `given` values win over the row's."""
    return cls(**{field: given[field] if field in given else row[field] for field in cls.__struct_fields__})
