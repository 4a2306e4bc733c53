"""``GET /api/v1/cases/{id}/items``: states, filters, keyset paging and CSV, on both
engines."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.verdicts.conftest import Case


def _items(case: Case, **params: Any) -> Any:
    r = case.client.get(f"{case.world.url}/items", headers=case.world.prosecutor.headers,
                        params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _all(case: Case, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = _items(case, limit=2, **({"cursor": cursor} if cursor else {}), **params)
        assert len(page["items"]) <= 2
        out.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return out


class TestItems:
    def test_pages_cover_every_item_once_in_order(self, case: Case) -> None:
        case.scan(present=case.digests[:1])
        case.delete(case.digests[1:3])
        items = _all(case)
        assert [i["ordinal"] for i in items] == list(range(6))
        assert [i["digest"] for i in items] == case.digests
        states = [i["state"] for i in items]
        assert states == ["present", "deleted", "deleted", "unseen", "unseen", "unseen"]

    def test_filters_by_state_kind_and_scope(self, case: Case) -> None:
        case.scan(present=case.digests[:1])
        case.delete(case.digests[1:3])
        assert [i["digest"] for i in _all(case, state="deleted")] == case.digests[1:3]
        assert [i["digest"] for i in _all(case, state="present")] == case.digests[:1]
        assert len(_all(case, state="unseen")) == 3
        kinds = {e.kind for e in case.entries}
        for kind in kinds:
            got = _all(case, kind=kind)
            assert [i["digest"] for i in got] == [e.digest for e in case.entries
                                                   if e.kind == kind]
        in_scope = {i["digest"] for i in _all(case, scope=case.scope["id"])}
        expected = set(case.digests[:3]) | {e.digest for e in case.entries
                                            if e.source == "SH-QP/NAS1"}
        assert in_scope == expected

    def test_csv_streams_the_filtered_list(self, case: Case) -> None:
        case.delete(case.digests[:2])
        r = case.client.get(f"{case.world.url}/items", headers=case.world.prosecutor.headers,
                            params={"format": "csv", "state": "unseen"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["digest"] for row in rows] == case.digests[2:]
        assert {row["state"] for row in rows} == {"unseen"}

    def test_unknown_scope_and_foreign_cursor(self, case: Case) -> None:
        r = case.client.get(f"{case.world.url}/items", headers=case.world.prosecutor.headers,
                            params={"scope": 999_999})
        assert r.status_code == 404
        r = case.client.get(f"{case.world.url}/items", headers=case.world.prosecutor.headers,
                            params={"cursor": "eyJsIjoic2NvcGVzIiwiYSI6MX0"})
        assert r.status_code == 400

    def test_witnesses_see_counts_not_item_rows(self, case: Case) -> None:
        r = case.client.get(f"{case.world.url}/items", headers=case.world.witness.headers)
        assert r.status_code == 403
