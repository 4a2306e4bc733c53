"""``deletion-audit manifest build | sign | verify`` on a generated evidence tree: real JPEG
files (Pillow), MP4/MOV/HEIC files written as minimal ISO-BMFF boxes, duplicates, a symlink,
a subjects map and a SQLite table of records."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import random
import sqlite3
import stat
import subprocess
import sys
from contextlib import chdir
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from click.testing import CliRunner, Result
from PIL import Image

from deletion_audit.cli import main
from deletion_audit.commands import _evidence
from deletion_audit.core import keys

CASE = "（2024）沪03民特25号"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# -- evidence generation ---------------------------------------------------------------------


def jpeg(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (24, 24), (rng.randrange(256), rng.randrange(256), 0))
    image.putpixel((seed % 24, seed // 24 % 24), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (8, 8), seed % 256).save(out, format="PNG")
    return out.getvalue()


def box(kind: bytes, body: bytes) -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def iso_bmff(brand: bytes, payload: bytes) -> bytes:
    """ftyp + moov + mdat: enough of an MP4/MOV/HEIF file for kind sniffing."""
    ftyp = box(b"ftyp", brand + (512).to_bytes(4, "big") + b"isomiso2mp41")
    moov = box(b"moov", box(b"mvhd", bytes(100)))
    return ftyp + moov + box(b"mdat", payload)


def avi(payload: bytes) -> bytes:
    return b"RIFF" + (4 + len(payload)).to_bytes(4, "little") + b"AVI " + payload


@dataclass
class Evidence:
    root: Path
    files: dict[str, bytes] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    """relative path → expected kind"""
    subjects: dict[str, str] = field(default_factory=dict)
    """relative path → person identifier"""

    def add(self, rel: str, content: bytes, kind: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        self.files[rel] = content
        self.kinds[rel] = kind

    def digests(self) -> dict[str, str]:
        """digest → kind, one per distinct content."""
        return {hashlib.sha256(c).hexdigest(): self.kinds[r] for r, c in self.files.items()}


@pytest.fixture
def evidence(tmp_path: Path) -> Evidence:
    ev = Evidence(tmp_path / "evidence")
    for i in range(6):
        ev.add(f"lobby/cam1/IMG_{i:04d}.jpg", jpeg(i), "image")
    ev.add("lobby/cam1/IMG_0000 copy.jpg", jpeg(0), "image")  # same content: one item
    ev.add("lobby/snapshot.png", png(3), "image")
    ev.add("lobby/face.heic", iso_bmff(b"heic", os.urandom(64)), "image")
    for i in range(3):
        ev.add(f"video/clip{i}.mp4", iso_bmff(b"isom" if i % 2 else b"mp42",
                                              f"frames {i}".encode() * 50), "video")
    ev.add("video/lobby.mov", iso_bmff(b"qt  ", os.urandom(256)), "video")
    ev.add("video/old.avi", avi(os.urandom(128)), "video")
    ev.add("docs/report.pdf", b"%PDF-1.4\n% forensic report\n", "document")
    ev.add("docs/notes.txt", "张三 110101199001011234\n".encode(), "other")
    ev.add("docs/empty.bin", b"", "other")
    (ev.root / "lobby" / "latest.jpg").symlink_to("cam1/IMG_0001.jpg")
    ev.subjects = {
        "lobby/cam1/IMG_0000.jpg": "310101199001010011",
        "lobby/cam1/IMG_0001.jpg": "310101199001010011",
        "lobby/cam1/IMG_0002.jpg": "310101199202020022",
        "video/clip1.mp4": "310101199303030033",
    }
    return ev


def write_subjects_csv(path: Path, rows: dict[str, str]) -> Path:
    path.write_text("path,subject\n" + "".join(f"{p},{s}\n" for p, s in rows.items()),
                    encoding="utf-8")
    return path


@pytest.fixture
def database(tmp_path: Path, evidence: Evidence) -> tuple[str, list[bytes]]:
    """A camera platform's table: two key columns, BLOB content, one NULL, one row that
    holds the same bytes as an evidence file."""
    path = tmp_path / "platform.db"
    rows = [os.urandom(40 + i) for i in range(5)] + [evidence.files["lobby/cam1/IMG_0003.jpg"]]
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE faces (store_id INTEGER, photo_id INTEGER, img BLOB, "
                     "img_hex TEXT, PRIMARY KEY (store_id, photo_id))")
        for i, content in enumerate(rows):
            conn.execute("INSERT INTO faces VALUES (?, ?, ?, ?)",
                         (143, i, content, content.hex().upper()))
        conn.execute("INSERT INTO faces VALUES (22, 1, NULL, NULL)")
    conn.close()
    return f"sqlite:///{path}", rows


# -- independent checks ----------------------------------------------------------------------


def read_lines(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    objects = [json.loads(line) for line in lines[:-1]]
    for line, obj in zip(lines[:-1], objects, strict=True):
        assert line == rfc8785.dumps(obj)
    return objects[0], objects[1:]


def mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle tree hash, written out again for the test."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


def independent_root(entries: list[dict[str, Any]]) -> str:
    leaves = []
    for entry in entries:
        rest = {k: v for k, v in entry.items() if k != "digest"}
        data = bytes.fromhex(entry["digest"]) + hashlib.sha256(rfc8785.dumps(rest)).digest()
        leaves.append(hashlib.sha256(b"\x00" + data).digest())
    return mth(leaves).hex()


def build(evidence: Evidence, out: Path, *extra: str | Path) -> dict[str, Any]:
    result = run("manifest", "build", evidence.root, "--case", CASE, "-o", out, "--json",
                 *extra)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


# -- build -----------------------------------------------------------------------------------


class TestBuild:
    def test_items_kinds_and_root(self, tmp_path: Path, evidence: Evidence) -> None:
        out = tmp_path / "manifest.jsonl"
        report = build(evidence, out)
        header, entries = read_lines(out)
        expected = evidence.digests()
        assert [e["digest"] for e in entries] == sorted(expected)
        assert {e["digest"]: e["kind"] for e in entries} == expected
        sizes = {hashlib.sha256(c).hexdigest(): len(c) for c in evidence.files.values()}
        assert {e["digest"]: e["size"] for e in entries} == sizes
        assert header["count"] == len(entries) == report["count"] == 16
        assert header["case"] == CASE
        assert header["examiner_key_id"] is None
        assert report["kinds"] == {"document": 1, "image": 8, "other": 2, "video": 5}
        assert report["duplicatesMerged"] == 1
        assert report["skipped"] == {"symlink": 1}
        assert report["files"] == 17
        assert report["root"] == independent_root(entries)
        assert report["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
        assert not any("subject" in e or "source" in e for e in entries)

    def test_text_summary(self, tmp_path: Path, evidence: Evidence) -> None:
        result = run("manifest", "build", evidence.root, "--case", CASE,
                     "-o", tmp_path / "m.jsonl")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0].endswith("16 items (document 1, image 8, other 2, video 5), 0 people")
        assert "merged 1 duplicate(s) (identical content)" in lines[1]
        assert "skipped: 1 symlink" in result.stdout
        assert "root: " in result.stdout

    def test_subjects_become_keyed_pseudonyms(self, tmp_path: Path, evidence: Evidence) -> None:
        csv = write_subjects_csv(tmp_path / "map.csv", evidence.subjects)
        key_file = tmp_path / "case.key"
        result = run("manifest", "build", evidence.root, "--case", CASE, "-o",
                     tmp_path / "m.jsonl", "--subjects", csv, "--subject-key", key_file, "--json")
        assert result.exit_code == 0, result.output
        assert "escrow a copy with the procuratorate" in result.stderr
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = bytes.fromhex(key_file.read_text().strip())
        assert len(key) == 32
        assert json.loads(result.stdout)["people"] == 3
        _, entries = read_lines(tmp_path / "m.jsonl")
        by_digest = {e["digest"]: e.get("subject") for e in entries}
        for rel, person in evidence.subjects.items():
            digest = hashlib.sha256(evidence.files[rel]).hexdigest()
            pseudonym = hmac.new(key, person.encode(), hashlib.sha256).hexdigest()
            assert by_digest[digest] == pseudonym
        assert "310101" not in (tmp_path / "m.jsonl").read_text()
        # The same key again gives the same pseudonyms, and says nothing about escrow.
        again = run("manifest", "build", evidence.root, "--case", CASE, "-o",
                    tmp_path / "m2.jsonl", "--subjects", csv, "--subject-key", key_file)
        assert again.exit_code == 0, again.output
        assert "escrow" not in again.stderr
        assert read_lines(tmp_path / "m2.jsonl")[1] == entries

    def test_absolute_paths_in_the_map(self, tmp_path: Path, evidence: Evidence) -> None:
        rows = {str(evidence.root / rel): who for rel, who in evidence.subjects.items()}
        csv = write_subjects_csv(tmp_path / "map.csv", rows)
        report = build(evidence, tmp_path / "m.jsonl", "--subjects", csv,
                       "--subject-key", tmp_path / "k")
        assert report["people"] == 3

    def test_location_codes(self, tmp_path: Path, evidence: Evidence) -> None:
        out = tmp_path / "m.jsonl"
        result = run("manifest", "build", f"{evidence.root / 'lobby'}=sales-office:lobby",
                     evidence.root / "video", "--source", "sales-office:nvr", "--case", CASE,
                     "-o", out)
        assert result.exit_code == 0, result.output
        _, entries = read_lines(out)
        sources = {e["kind"]: e["source"] for e in entries}
        assert sources == {"image": "sales-office:lobby", "video": "sales-office:nvr"}

    def test_database_records(self, tmp_path: Path, evidence: Evidence,
                              database: tuple[str, list[bytes]]) -> None:
        url, rows = database
        out = tmp_path / "m.jsonl"
        report = build(evidence, out, "--sql", url, "--table", "faces",
                       "--key-columns", "store_id,photo_id", "--content-column", "img",
                       "--source", "vendor:db")
        _, entries = read_lines(out)
        records = {e["digest"] for e in entries if e["kind"] == "record"}
        assert records == {hashlib.sha256(r).hexdigest() for r in rows[:5]}
        # The row that holds an evidence file's bytes is that same item, merged.
        assert report["duplicatesMerged"] == 2
        assert report["records"] == 6
        assert report["skipped"] == {"NULL content": 1, "symlink": 1}
        assert report["kinds"]["record"] == 5
        assert all(e["source"] == "vendor:db" for e in entries)
        assert report["root"] == independent_root(entries)

    def test_database_only_with_hex_and_filter(self, tmp_path: Path,
                                               database: tuple[str, list[bytes]]) -> None:
        url, rows = database
        out = tmp_path / "m.jsonl"
        result = run("manifest", "build", "--case", CASE, "-o", out, "--json", "--sql", url,
                     "--table", "faces", "--key-columns", "store_id,photo_id",
                     "--content-column", "img_hex", "--encoding", "hex",
                     "--where", "photo_id < 3")
        assert result.exit_code == 0, result.output
        _, entries = read_lines(out)
        assert {e["digest"] for e in entries} == {hashlib.sha256(r).hexdigest()
                                                  for r in rows[:3]}
        # photo_id 1 of store 22 passes the filter and has no content.
        assert json.loads(result.stdout)["skipped"] == {"NULL content": 1}

    def test_parallel_strategies_agree(self, tmp_path: Path) -> None:
        root = tmp_path / "many"
        root.mkdir()
        for i in range(150):
            (root / f"f{i:03d}.jpg").write_bytes(jpeg(i) if i % 3 else os.urandom(3000 + i))
        paths = sorted(str(p) for p in root.iterdir())
        tasks = [(p, "site-1", None) for p in paths]
        results = {
            strategy: list(_evidence.hash_files(tasks, jobs=2, strategy=strategy))
            for strategy in ("serial", "threads", "processes")
        }
        assert sorted(results["serial"]) == sorted(results["threads"]) == sorted(
            results["processes"])
        digests = sorted(line[11:75].decode() for line, _ in results["serial"])
        assert digests == sorted(hashlib.sha256(Path(p).read_bytes()).hexdigest()
                                 for p in paths)

    def test_as_a_real_process_with_a_process_pool(self, tmp_path: Path) -> None:
        root = tmp_path / "small"
        root.mkdir()
        for i in range(200):
            (root / f"{i}.bin").write_bytes(os.urandom(4096 + i))
        out = tmp_path / "m.jsonl"
        done = subprocess.run(
            [sys.executable, "-m", "deletion_audit", "manifest", "build", str(root),
             "--case", CASE, "-o", str(out), "--jobs", "2", "--json"],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # no progress bar in a pipe
        _, entries = read_lines(out)
        assert [e["digest"] for e in entries] == sorted(
            hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir())
        assert json.loads(done.stdout)["root"] == independent_root(entries)


class TestStartUp:
    def test_build_imports_no_cryptography_or_pydantic(self) -> None:
        # Guards the small-file benchmark: a third of a build's start-up went to importing
        # what only sign and verify use.
        code = ("import sys\n"
                "import deletion_audit.cli, deletion_audit.commands.manifest\n"
                "print(sorted(m for m in ('cryptography', 'pydantic') if m in sys.modules))\n")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, timeout=60)
        assert done.stdout.strip() == "[]"

    def test_help_lists_every_subcommand(self) -> None:
        result = run("manifest", "--help")
        assert result.exit_code == 0
        for name in ("build", "sign", "verify"):
            assert f"  {name} " in result.stdout


class TestBuildErrors:
    def test_map_row_naming_no_file(self, tmp_path: Path, evidence: Evidence) -> None:
        csv = write_subjects_csv(tmp_path / "map.csv",
                                 {**evidence.subjects, "lobby/cam9/gone.jpg": "x"})
        result = run("manifest", "build", evidence.root, "--case", CASE, "-o",
                     tmp_path / "m.jsonl", "--subjects", csv, "--subject-key", tmp_path / "k")
        assert result.exit_code == 1
        assert result.stderr == (f"error: {csv}:6: no evidence file lobby/cam9/gone.jpg "
                                 f"under the paths\n")
        assert not (tmp_path / "m.jsonl").exists()
        assert not (tmp_path / "k").exists()  # no key is made for a failed build

    def test_map_without_its_columns(self, tmp_path: Path, evidence: Evidence) -> None:
        csv = tmp_path / "map.csv"
        csv.write_text("file,person\na.jpg,1\n")
        result = run("manifest", "build", evidence.root, "--case", CASE, "-o",
                     tmp_path / "m.jsonl", "--subjects", csv, "--subject-key", tmp_path / "k")
        assert result.exit_code == 1
        assert "map.csv:1: the header must name columns path,subject" in result.stderr

    def test_map_with_an_empty_subject(self, tmp_path: Path, evidence: Evidence) -> None:
        csv = tmp_path / "map.csv"
        csv.write_text("path,subject\nlobby/snapshot.png,\n")
        result = run("manifest", "build", evidence.root, "--case", CASE, "-o",
                     tmp_path / "m.jsonl", "--subjects", csv, "--subject-key", tmp_path / "k")
        assert result.exit_code == 1
        assert "map.csv:2: empty subject for lobby/snapshot.png" in result.stderr

    def test_bad_subject_key(self, tmp_path: Path, evidence: Evidence) -> None:
        csv = write_subjects_csv(tmp_path / "map.csv", evidence.subjects)
        (tmp_path / "k").write_text("not a key\n")
        result = run("manifest", "build", evidence.root, "--case", CASE, "-o",
                     tmp_path / "m.jsonl", "--subjects", csv, "--subject-key", tmp_path / "k")
        assert result.exit_code == 1
        assert "must hold 64 hex digits" in result.stderr

    def test_undecodable_record(self, tmp_path: Path, database: tuple[str, list[bytes]]) -> None:
        url, _ = database
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("UPDATE faces SET img_hex = 'zz' WHERE photo_id = 2")
        conn.close()
        result = run("manifest", "build", "--case", CASE, "-o", tmp_path / "m.jsonl",
                     "--sql", url, "--table", "faces", "--key-columns", "store_id,photo_id",
                     "--content-column", "img_hex", "--encoding", "hex")
        assert result.exit_code == 1
        assert result.stderr == ("error: database faces row (store_id=143, photo_id=2): "
                                 "content is not valid hex\n")

    def test_missing_table(self, tmp_path: Path, database: tuple[str, list[bytes]]) -> None:
        result = run("manifest", "build", "--case", CASE, "-o", tmp_path / "m.jsonl",
                     "--sql", database[0], "--table", "nope", "--key-columns", "id",
                     "--content-column", "img")
        assert result.exit_code == 1
        assert result.stderr.startswith("error: database nope: no such table")

    def test_unreadable_file(self, tmp_path: Path, evidence: Evidence,
                             monkeypatch: pytest.MonkeyPatch) -> None:
        # Tests run as root, which reads anything: the refusal is injected at the read.
        real = _evidence.hash_file
        locked = str(evidence.root / "video" / "old.avi")

        def hash_file(path: str) -> _evidence.Hashed:
            if path == locked:
                raise OSError(13, "Permission denied", path)
            return real(path)

        monkeypatch.setattr(_evidence, "hash_file", hash_file)
        result = run("manifest", "build", evidence.root, "--case", CASE, "--jobs", "1",
                     "-o", tmp_path / "m.jsonl")
        assert result.exit_code == 1
        assert result.stderr == f"error: cannot read {locked}: Permission denied\n"
        assert not (tmp_path / "m.jsonl").exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["evidence"]

    def test_existing_output(self, tmp_path: Path, evidence: Evidence) -> None:
        (tmp_path / "m.jsonl").write_text("keep")
        result = run("manifest", "build", evidence.root, "--case", CASE,
                     "-o", tmp_path / "m.jsonl")
        assert result.exit_code == 1
        assert "already exists; use --force" in result.stderr
        assert (tmp_path / "m.jsonl").read_text() == "keep"
        forced = run("manifest", "build", evidence.root, "--case", CASE,
                     "-o", tmp_path / "m.jsonl", "--force")
        assert forced.exit_code == 0, forced.output

    def test_nothing_found(self, tmp_path: Path) -> None:
        (tmp_path / "empty").mkdir()
        result = run("manifest", "build", tmp_path / "empty", "--case", CASE,
                     "-o", tmp_path / "m.jsonl")
        assert result.exit_code == 1
        assert "empty manifest" in result.stderr

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ((), "give at least one PATH or --sql"),
            (("--subjects", "map.csv"), "--subjects and --subject-key go together"),
            (("--table", "t"), "go with --sql"),
            (("--sql", "sqlite://", "--table", "t"), "--sql needs --key-columns, "
                                                     "--content-column"),
            (("--source", "a b"), "is not a location code"),
        ],
    )
    def test_usage_errors(self, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
        (tmp_path / "map.csv").write_text("path,subject\n")
        (tmp_path / "x").mkdir()
        with chdir(tmp_path):
            paths = ("x",) if args else ()
            result = run("manifest", "build", *paths, "--case", CASE, "-o", "m.jsonl", *args)
        assert result.exit_code == 2
        assert message in result.stderr

    def test_missing_path(self, tmp_path: Path) -> None:
        result = run("manifest", "build", tmp_path / "nope", "--case", CASE,
                     "-o", tmp_path / "m.jsonl")
        assert result.exit_code == 1
        assert "evidence path" in result.stderr
        assert "does not exist" in result.stderr


class TestSniff:
    @pytest.mark.parametrize(
        ("content", "kind"),
        [
            (jpeg(1), "image"), (png(1), "image"), (b"GIF89a....", "image"),
            (iso_bmff(b"heic", b""), "image"), (iso_bmff(b"mif1", b""), "image"),
            (iso_bmff(b"avif", b""), "image"), (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image"),
            (iso_bmff(b"isom", b""), "video"), (iso_bmff(b"mp42", b""), "video"),
            (iso_bmff(b"qt  ", b""), "video"), (avi(b"x"), "video"),
            (b"\x1a\x45\xdf\xa3\x01", "video"), (b"%PDF-1.7", "document"),
            (b"", "other"), (b"\xff\xd8", "other"), (b"RIFF\x00\x00\x00\x00WAVE", "other"),
        ],
    )
    def test_kinds_from_magic_bytes(self, content: bytes, kind: str) -> None:
        assert _evidence.sniff_kind(content[:16]) == kind


# -- sign and verify -------------------------------------------------------------------------


@pytest.fixture
def signed(tmp_path: Path, evidence: Evidence) -> dict[str, Path]:
    key = tmp_path / "examiner.pem"
    keys.write_keypair(key)
    out = tmp_path / "manifest.jsonl"
    build(evidence, out, "--examiner-pub", keys.public_key_path(key))
    envelope = tmp_path / "manifest.dsse.json"
    result = run("manifest", "sign", out, "--key", key, "-o", envelope)
    assert result.exit_code == 0, result.output
    assert "signed manifest.jsonl: 16 items" in result.stderr
    return {"manifest": out, "envelope": envelope, "key": key,
            "pub": keys.public_key_path(key)}


class TestSignVerify:
    def test_sign_then_verify(self, signed: dict[str, Path]) -> None:
        result = run("manifest", "verify", signed["manifest"], signed["envelope"],
                     "--pub", signed["pub"])
        assert result.exit_code == 0, result.output
        key_id = keys.key_id(keys.load_public_key(signed["pub"]))
        assert f"verified: signed by key(s) {key_id}" in result.stdout

    def test_envelope_carries_the_commitment(self, signed: dict[str, Path]) -> None:
        envelope = json.loads(signed["envelope"].read_text())
        import base64

        statement = json.loads(base64.b64decode(envelope["payload"]))
        header, entries = read_lines(signed["manifest"])
        assert statement["subject"] == [{"name": "manifest.jsonl", "digest": {
            "sha256": hashlib.sha256(signed["manifest"].read_bytes()).hexdigest()}}]
        predicate = statement["predicate"]
        assert predicate["root"] == independent_root(entries)
        assert predicate["count"] == 16
        assert predicate["caseNumber"] == CASE
        assert predicate["examinerKeyId"] == header["examiner_key_id"]

    def test_verify_json(self, signed: dict[str, Path]) -> None:
        result = run("manifest", "verify", signed["manifest"], signed["envelope"],
                     "--pub", signed["pub"], "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["verified"] is True
        assert report["checks"]["signature"] == "verified"
        assert report["count"] == 16

    def test_without_a_key_the_signature_is_unverified(self, signed: dict[str, Path]) -> None:
        result = run("manifest", "verify", signed["manifest"], signed["envelope"])
        assert result.exit_code == 4
        key_id = keys.key_id(keys.load_public_key(signed["pub"]))
        assert f"signature unverified: the envelope names key id(s) {key_id}" in result.stderr
        assert "match the signed statement" in result.stdout

    def test_tampered_manifest_fails(self, signed: dict[str, Path]) -> None:
        path = signed["manifest"]
        header, entries = read_lines(path)
        entries[3]["size"] += 1  # still canonical and sorted: only the commitment can tell
        path.write_bytes(b"".join(rfc8785.dumps(o) + b"\n" for o in [header, *entries]))
        result = run("manifest", "verify", path, signed["envelope"], "--pub", signed["pub"])
        assert result.exit_code == 1
        assert "not verified: digest: the file's SHA-256" in result.stderr
        assert "; root: the file's root" in result.stderr

    def test_reordered_manifest_names_the_line(self, signed: dict[str, Path]) -> None:
        lines = signed["manifest"].read_bytes().splitlines(keepends=True)
        lines[2], lines[3] = lines[3], lines[2]
        signed["manifest"].write_bytes(b"".join(lines))
        result = run("manifest", "verify", signed["manifest"], signed["envelope"],
                     "--pub", signed["pub"])
        assert result.exit_code == 1
        assert "not verified: line 4: out-of-order digest" in result.stderr

    def test_another_key_fails(self, tmp_path: Path, signed: dict[str, Path]) -> None:
        keys.write_keypair(tmp_path / "other.pem")
        result = run("manifest", "verify", signed["manifest"], signed["envelope"],
                     "--pub", tmp_path / "other.pem.pub")
        assert result.exit_code == 1
        assert "not verified: signature: 0 of 1 required signature(s) verified" in result.stderr

    def test_sign_refuses_a_key_the_header_does_not_name(self, tmp_path: Path,
                                                         signed: dict[str, Path]) -> None:
        keys.write_keypair(tmp_path / "other.pem")
        result = run("manifest", "sign", signed["manifest"], "--key", tmp_path / "other.pem",
                     "-o", tmp_path / "x.json")
        assert result.exit_code == 1
        assert "names examiner key" in result.stderr
        assert "sign with the key the header names" in result.stderr
        assert not (tmp_path / "x.json").exists()

    def test_sign_refuses_an_invalid_manifest(self, tmp_path: Path,
                                              signed: dict[str, Path]) -> None:
        data = signed["manifest"].read_bytes()
        signed["manifest"].write_bytes(data[:-1])
        result = run("manifest", "sign", signed["manifest"], "--key", signed["key"],
                     "-o", tmp_path / "x.json")
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: {signed['manifest']}: line 17: truncated file")

    def test_unreadable_envelope_cannot_verify(self, tmp_path: Path,
                                               signed: dict[str, Path]) -> None:
        (tmp_path / "bad.json").write_text("{")
        result = run("manifest", "verify", signed["manifest"], tmp_path / "bad.json",
                     "--pub", signed["pub"])
        assert result.exit_code == 4
        assert "bad.json" in result.stderr
