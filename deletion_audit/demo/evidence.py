"""Synthetic evidence for the demo: case 1's face images and videos, never real faces.

Every image is a cartoon face drawn with Pillow from its person's seed, labelled
"SYNTHETIC" and numbered (so no two files are equal: the manifest merges identical
content); every video is a small ISO-BMFF file (``ftyp``, ``moov`` with ``mvhd``, a ``free``
box saying what it is, ``mdat`` with seeded filler). The same seed and scale give the same
bytes, so a second run over the same ``--out`` reuses what the first one wrote.

Counts per scale are case 1's figures (18,488 images, 7,193 videos, 505 people) times the
scale, rounded half up: 0.01 → 185 images, 72 videos, 5 people; 0.1 → 1,849, 719, 51.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

SCALES: tuple[str, ...] = ("0.01", "0.1", "1")
CASE_1_IMAGES = 18_488
CASE_1_VIDEOS = 7_193
CASE_1_PEOPLE = 505
GENERATOR_VERSION = 1
MARKER_SUFFIX = ".generated.json"
_CHUNK = 256

Kind = Literal["image", "video"]


class EvidenceError(Exception):
    """The evidence cannot be generated; the message says why."""


@dataclass(frozen=True)
class Counts:
    images: int
    videos: int
    people: int

    @property
    def items(self) -> int:
        return self.images + self.videos


def counts_for(scale: str) -> Counts:
    """Case 1's counts times ``scale``, each rounded half up (never below one)."""
    if scale not in SCALES:
        raise EvidenceError(f"scale {scale!r} is not one of {', '.join(SCALES)}")
    factor = Decimal(scale)

    def scaled(n: int) -> int:
        return max(1, int((n * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP)))

    return Counts(images=scaled(CASE_1_IMAGES), videos=scaled(CASE_1_VIDEOS),
                  people=scaled(CASE_1_PEOPLE))


@dataclass(frozen=True)
class Item:
    """One evidence file: whose it is and where it goes (relative to the evidence root)."""

    kind: Kind
    person: int
    number: int
    """Running number within its kind, from 1."""

    @property
    def relpath(self) -> str:
        if self.kind == "image":
            return f"faces/p{self.person:04d}/img-{self.number:06d}.jpg"
        return f"videos/p{self.person:04d}/vid-{self.number:06d}.mp4"

    @property
    def subject(self) -> str:
        """The person's identifier in the forensic report (pseudonymised by the examiner)."""
        return f"synthetic-person-{self.person:04d}"


def plan(counts: Counts) -> list[Item]:
    """Every file of the evidence, images then videos, spread over the people in
    contiguous runs (person 1 first)."""
    items = [Item("image", 1 + i * counts.people // counts.images, i + 1)
             for i in range(counts.images)]
    items += [Item("video", 1 + i * counts.people // counts.videos, i + 1)
              for i in range(counts.videos)]
    return items


# -- content --------------------------------------------------------------------------------


def _rgb(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    return (rng.randrange(low, high), rng.randrange(low, high), rng.randrange(low, high))


@cache
def _font() -> object:
    from PIL import ImageFont

    return ImageFont.load_default()


def face_jpeg(seed: int, person: int, label: str, *, size: int = 128) -> bytes:
    """A cartoon face drawn from the person's seed (shape, skin, hair, eyes) with a varied
    background, labelled SYNTHETIC and ``label``."""
    from PIL import Image, ImageDraw

    who = random.Random(f"{seed}:person:{person}")
    shot = random.Random(f"{seed}:shot:{person}:{label}")
    skin = (who.randrange(150, 250), who.randrange(110, 200), who.randrange(80, 160))
    hair = _rgb(who, 10, 120)
    width, height = who.randrange(56, 80), who.randrange(68, 92)
    eye_gap, eye_size = who.randrange(12, 22), who.randrange(4, 8)
    image = Image.new("RGB", (size, size), _rgb(shot, 170, 256))
    draw = ImageDraw.Draw(image)
    cx = size // 2 + shot.randrange(-6, 7)
    cy = size // 2 + 6 + shot.randrange(-4, 5)
    top = cy - height // 2
    draw.ellipse((cx - width // 2 - 4, top - 8, cx + width // 2 + 4, cy), fill=hair)
    draw.ellipse((cx - width // 2, top, cx + width // 2, cy + height // 2), fill=skin)
    for side in (-1, 1):
        ex = cx + side * eye_gap
        draw.ellipse((ex - eye_size, cy - 10 - eye_size, ex + eye_size, cy - 10 + eye_size),
                     fill=(255, 255, 255), outline=(0, 0, 0))
        draw.ellipse((ex - 2, cy - 12, ex + 2, cy - 8), fill=(30, 30, 30))
    smile = shot.randrange(-6, 10)
    draw.arc((cx - 14, cy + 4 - abs(smile), cx + 14, cy + 14 + abs(smile)),
             0 if smile >= 0 else 180, 180 if smile >= 0 else 360, fill=(120, 20, 20), width=2)
    font: Any = _font()
    draw.rectangle((0, 0, size, 13), fill=(200, 0, 0))
    draw.text((4, 1), "SYNTHETIC", fill=(255, 255, 255), font=font)
    draw.text((4, size - 13), label, fill=(0, 0, 0), font=font)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _mvhd(duration_ms: int) -> bytes:
    matrix = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
    body = (b"\0\0\0\0"  # version 0, flags
            + struct.pack(">IIII", 0, 0, 1000, duration_ms)  # times, timescale, duration
            + struct.pack(">IH", 0x00010000, 0x0100) + b"\0" * 10  # rate, volume, reserved
            + matrix + b"\0" * 24 + struct.pack(">I", 1))  # pre_defined, next_track_ID
    return _box(b"mvhd", body)


def video_mp4(seed: int, person: int, label: str) -> bytes:
    """A small, structurally valid ISO-BMFF file; its ``mdat`` is seeded filler."""
    rng = random.Random(f"{seed}:video:{person}:{label}")
    filler = hashlib.shake_256(f"{seed}:{person}:{label}".encode()).digest(
        rng.randrange(4096, 12288))
    note = f"SYNTHETIC deletion-audit demo video, person {person:04d}, {label}".encode()
    return (_box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
            + _box(b"moov", _mvhd(rng.randrange(2000, 15000)))
            + _box(b"free", note)
            + _box(b"mdat", filler))


def content(seed: int, item: Item) -> bytes:
    label = f"P{item.person:04d} #{item.number:06d}"
    if item.kind == "image":
        return face_jpeg(seed, item.person, label)
    return video_mp4(seed, item.person, label)


def iter_boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The top-level ISO-BMFF boxes of ``data`` as (type, payload); raises on a box that
    does not fit (32-bit sizes only: the demo's files are small)."""
    offset = 0
    while offset < len(data):
        if len(data) - offset < 8:
            raise EvidenceError(f"truncated box header at offset {offset}")
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size < 8 or offset + size > len(data):
            raise EvidenceError(f"box {kind!r} at offset {offset} does not fit")
        yield kind, data[offset + 8:offset + size]
        offset += size


# -- writing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    root: Path
    seed: int
    scale: str
    counts: Counts
    items: tuple[Item, ...]
    reused: bool

    def path(self, item: Item) -> Path:
        return self.root / item.relpath

    def subjects_csv(self, path: Path) -> Path:
        """The forensic report's path → person table, as ``manifest build --subjects``
        reads it."""
        lines = ["path,subject"] + [f"{i.relpath},{i.subject}" for i in self.items]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def _write_chunk(root: str, seed: int, items: Sequence[Item]) -> int:
    for item in items:
        path = os.path.join(root, item.relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content(seed, item))
    return len(items)


def _marker(seed: int, scale: str, counts: Counts) -> dict[str, object]:
    return {"generator": GENERATOR_VERSION, "seed": seed, "scale": scale,
            "counts": asdict(counts)}


def generate(root: Path, *, scale: str, seed: int, jobs: int | None = None) -> Evidence:
    """Write the evidence under ``root`` (in parallel processes), or reuse it when
    ``root`` already holds a complete set from the same seed and scale."""
    counts = counts_for(scale)
    try:
        import PIL  # noqa: F401 - drawing the faces needs it; say so before any work
    except ImportError:
        raise EvidenceError("drawing the synthetic faces needs Pillow: "
                            "pip install 'deletion-audit[server,demo]'") from None
    items = tuple(plan(counts))
    wanted = _marker(seed, scale, counts)
    # Beside the tree, not in it: the examiner hashes every file under the root.
    marker = root.with_name(root.name + MARKER_SUFFIX)
    try:
        if json.loads(marker.read_text("utf-8")) == wanted:
            return Evidence(root, seed, scale, counts, items, reused=True)
    except (OSError, ValueError):
        pass
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    chunks = [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]
    workers = max(1, jobs or os.cpu_count() or 1)
    if workers == 1 or len(chunks) == 1:
        for chunk in chunks:
            _write_chunk(str(root), seed, chunk)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            written = sum(pool.map(_write_chunk, [str(root)] * len(chunks),
                                   [seed] * len(chunks), chunks))
        if written != len(items):
            raise EvidenceError(f"wrote {written} of {len(items)} evidence files")
    # The marker goes last: an interrupted generation is redone, never half reused.
    marker.write_text(json.dumps(wanted), encoding="utf-8")
    return Evidence(root, seed, scale, counts, items, reused=False)
