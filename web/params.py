"""The types of path, query and header parameters the API and the pages share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query

# Ids in paths: bounded, so a huge number is a 422, not an overflow in the database driver.
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
IfMatch = Annotated[str | None, Header(description="The case version you saw (ETag).")]
