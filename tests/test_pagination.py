"""The shared keyset-pagination convention (deletion_audit/pagination.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deletion_audit.errors import BadRequest
from deletion_audit.pagination import decode_cursor, encode_cursor


class TestCursor:
    @given(st.integers(min_value=0, max_value=2**63 - 1))
    def test_round_trip(self, after: int) -> None:
        assert decode_cursor("cases", encode_cursor("cases", after)) == after

    def test_cursor_is_bound_to_its_list(self) -> None:
        with pytest.raises(BadRequest, match="not a members cursor"):
            decode_cursor("members", encode_cursor("cases", 3))

    @pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", "eyJsIjoiY2FzZXMiLCJhIjoieCJ9"])
    def test_garbage_is_a_400(self, cursor: str) -> None:
        with pytest.raises(BadRequest, match="start again"):
            decode_cursor("cases", cursor)
