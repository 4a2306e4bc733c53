"""Shapes shared by every API: the error body and the OpenAPI declarations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    message: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


# OpenAPI: a public endpoint declares an empty security requirement explicitly.
PUBLIC: dict[str, Any] = {"security": []}
