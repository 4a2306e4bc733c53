"""``GET /api/v1/cases/{id}/export``: the same bundle, streamed, for those allowed."""

from __future__ import annotations

from pathlib import Path

from deletion_audit.bundles.verify import Exit
from tests.bundles.conftest import Bundles, deleted_and_clean


class TestExportEndpoint:
    def test_the_prosecutor_downloads_a_court_bundle_that_verifies(
            self, bundles: Bundles, tmp_path: Path) -> None:
        deleted_and_clean(bundles.case)
        world = bundles.case.world
        with bundles.case.client.stream("GET", f"{world.url}/export", params={"tier": "court"},
                                        headers=world.prosecutor.headers) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "application/zip"
            assert f"case-{world.case_id}-court.zip" in r.headers["content-disposition"]
            path = tmp_path / "court.zip"
            with path.open("wb") as fh:
                for chunk in r.iter_bytes():
                    fh.write(chunk)
        report = bundles.verify(path)
        assert report.problems == []
        assert report.exit is Exit.VERIFIED
        assert report.tier == "court"

    def test_a_witness_gets_the_public_tier_only(self, bundles: Bundles,
                                                 tmp_path: Path) -> None:
        deleted_and_clean(bundles.case)
        world = bundles.case.world
        client = bundles.case.client
        r = client.get(f"{world.url}/export", params={"tier": "court"},
                       headers=world.witness.headers)
        assert r.status_code == 403
        assert "export bundles" in r.json()["message"]
        r = client.get(f"{world.url}/export", params={"tier": "public"},
                       headers=world.witness.headers)
        assert r.status_code == 200
        path = tmp_path / "public.zip"
        path.write_bytes(r.content)
        report = bundles.verify(path)
        assert report.exit is Exit.VERIFIED
        assert report.tier == "public"

    def test_the_examiner_may_export_the_court_tier(self, bundles: Bundles) -> None:
        world = bundles.case.world
        r = bundles.case.client.get(f"{world.url}/export", params={"tier": "court"},
                                    headers=world.examiner.headers)
        assert r.status_code == 200

    def test_a_non_member_and_a_missing_case_are_404(self, bundles: Bundles) -> None:
        world = bundles.case.world
        client = bundles.case.client
        r = client.get(f"{world.url}/export", params={"tier": "public"},
                       headers=world.outsider.headers)
        assert r.status_code == 404
        r = client.get("/api/v1/cases/999999/export", params={"tier": "public"},
                       headers=world.prosecutor.headers)
        assert r.status_code == 404

    def test_a_tier_is_required(self, bundles: Bundles) -> None:
        world = bundles.case.world
        r = bundles.case.client.get(f"{world.url}/export", headers=world.prosecutor.headers)
        assert r.status_code == 422
        r = bundles.case.client.get(f"{world.url}/export", params={"tier": "all"},
                                    headers=world.prosecutor.headers)
        assert r.status_code == 422

    def test_without_a_token(self, bundles: Bundles) -> None:
        r = bundles.case.client.get(f"{bundles.case.world.url}/export",
                                    params={"tier": "public"})
        assert r.status_code == 401

    def test_a_kept_checkpoint_beyond_the_log(self, bundles: Bundles) -> None:
        world = bundles.case.world
        r = bundles.case.client.get(f"{world.url}/export",
                                    params={"tier": "public", "consistent_with": [10**9]},
                                    headers=world.prosecutor.headers)
        assert r.status_code == 400
        assert "no consistency proof from size" in r.json()["message"]
