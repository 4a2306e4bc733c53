"""The demo's synthetic evidence: counts per scale, real JPEG and ISO-BMFF files,
determinism, reuse, and where the company's leftovers go."""

from __future__ import annotations

import hashlib
import io
import struct
import sys
from pathlib import Path

import pytest
from PIL import Image

from deletion_audit.demo import evidence as ev
from deletion_audit.demo.company import (
    build_second_host,
    choose_leftovers,
    restore_backup,
    restored_items,
)


class TestCounts:
    @pytest.mark.parametrize(("scale", "images", "videos", "people"), [
        ("0.01", 185, 72, 5),     # 184.88, 71.93, 5.05
        ("0.1", 1849, 719, 51),   # 1848.8, 719.3, 50.5 (half up)
        ("1", 18_488, 7_193, 505),
    ])
    def test_case_1_figures_times_the_scale_rounded_half_up(
        self, scale: str, images: int, videos: int, people: int
    ) -> None:
        assert ev.counts_for(scale) == ev.Counts(images=images, videos=videos, people=people)

    def test_an_unknown_scale_is_refused(self) -> None:
        with pytest.raises(ev.EvidenceError, match=r"0\.5"):
            ev.counts_for("0.5")

    def test_the_plan_spreads_every_kind_over_every_person(self) -> None:
        counts = ev.counts_for("0.01")
        items = ev.plan(counts)
        assert len(items) == counts.items
        assert {i.person for i in items if i.kind == "image"} == set(range(1, 6))
        assert {i.person for i in items if i.kind == "video"} == set(range(1, 6))
        assert len({i.relpath for i in items}) == len(items)


class TestContent:
    def test_a_face_is_a_real_jpeg(self) -> None:
        data = ev.face_jpeg(7, 3, "P0003 #000001")
        image = Image.open(io.BytesIO(data))
        image.verify()
        assert image.format == "JPEG"
        assert image.size == (128, 128)

    def test_a_video_is_ftyp_moov_free_mdat(self) -> None:
        data = ev.video_mp4(7, 3, "P0003 #000001")
        boxes = list(ev.iter_boxes(data))
        assert [kind for kind, _ in boxes] == [b"ftyp", b"moov", b"free", b"mdat"]
        ftyp, moov = boxes[0][1], boxes[1][1]
        assert ftyp[:4] == b"isom"
        ((inner, mvhd),) = ev.iter_boxes(moov)
        assert inner == b"mvhd"
        assert len(mvhd) == 100  # a version-0 movie header
        assert struct.unpack(">I", mvhd[12:16]) == (1000,)  # timescale
        assert b"SYNTHETIC" in boxes[2][1]

    def test_a_box_that_does_not_fit_is_an_error(self) -> None:
        data = ev.video_mp4(7, 3, "x")
        with pytest.raises(ev.EvidenceError, match="does not fit"):
            list(ev.iter_boxes(data[:-1]))

    def test_same_seed_same_bytes_other_seed_other_bytes(self) -> None:
        item = ev.Item("image", 2, 9)
        assert ev.content(1, item) == ev.content(1, item)
        assert ev.content(1, item) != ev.content(2, item)
        video = ev.Item("video", 2, 9)
        assert ev.content(1, video) == ev.content(1, video)
        assert ev.content(1, video) != ev.content(2, video)


class TestGenerate:
    def test_writes_every_file_distinct_and_reuses_them(self, tmp_path: Path) -> None:
        root = tmp_path / "evidence"
        first = ev.generate(root, scale="0.01", seed=5, jobs=2)
        assert not first.reused
        files = sorted(p for p in root.rglob("*") if p.is_file())
        assert len(files) == 185 + 72
        assert len({hashlib.sha256(p.read_bytes()).digest() for p in files}) == len(files)
        assert sum(p.suffix == ".jpg" for p in files) == 185
        sample = first.path(first.items[0])
        before = sample.stat().st_mtime_ns

        again = ev.generate(root, scale="0.01", seed=5, jobs=2)
        assert again.reused
        assert sample.stat().st_mtime_ns == before

        other = ev.generate(root, scale="0.01", seed=6, jobs=1)
        assert not other.reused
        assert sample.read_bytes() == ev.content(6, first.items[0])

    def test_an_interrupted_generation_is_redone(self, tmp_path: Path) -> None:
        root = tmp_path / "evidence"
        ev.generate(root, scale="0.01", seed=5, jobs=1)
        (root.with_name("evidence" + ev.MARKER_SUFFIX)).unlink()
        victim = next(root.rglob("*.mp4"))
        victim.write_bytes(b"cut short")
        assert not ev.generate(root, scale="0.01", seed=5, jobs=1).reused
        assert ev.iter_boxes(victim.read_bytes())

    def test_without_pillow_it_says_what_to_install_and_writes_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "PIL", None)  # what `import PIL` finds uninstalled
        with pytest.raises(ev.EvidenceError, match=r"pip install 'deletion-audit\[server,demo\]'"):
            ev.generate(tmp_path / "evidence", scale="0.01", seed=5, jobs=1)
        assert not (tmp_path / "evidence").exists()

    def test_the_subjects_table_names_every_file(self, tmp_path: Path) -> None:
        evidence = ev.generate(tmp_path / "evidence", scale="0.01", seed=5, jobs=1)
        lines = evidence.subjects_csv(tmp_path / "subjects.csv").read_text().splitlines()
        assert lines[0] == "path,subject"
        assert len(lines) == 1 + 257
        assert len({line.split(",")[1] for line in lines[1:]}) == 5


class TestLeftovers:
    def test_disjoint_and_at_least_three_each(self, tmp_path: Path) -> None:
        evidence = ev.generate(tmp_path / "evidence", scale="0.01", seed=5, jobs=1)
        left = choose_leftovers(evidence)
        sets = [set(left.backup), set(left.rows), set(left.objects)]
        assert [len(s) for s in sets] == [5, 3, 3]
        assert len(sets[0] | sets[1] | sets[2]) == 5 + 3 + 3
        assert all(i.kind == "image" for i in left.rows + left.objects)
        assert choose_leftovers(evidence) == left


class TestBackupServer:
    def test_clean_at_first_then_an_old_backup_brings_copies_back(self, tmp_path: Path) -> None:
        evidence = ev.generate(tmp_path / "evidence", scale="0.01", seed=5, jobs=1)
        left = choose_leftovers(evidence)
        host = build_second_host(evidence, tmp_path / "company")
        digests = {hashlib.sha256(evidence.path(i).read_bytes()).hexdigest()
                   for i in evidence.items}

        def on_host() -> set[str]:
            return {hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in host.rglob("*") if p.is_file()}

        before = on_host()
        assert before
        assert not before & digests
        items = restored_items(left)
        # About half of the copies once in the backup directory, at least 3.
        assert items == left.backup[:3]
        assert restore_backup(evidence, items, host) == 3
        back = on_host() - before
        assert back == {hashlib.sha256(evidence.path(i).read_bytes()).hexdigest()
                        for i in items}
        assert back <= digests
