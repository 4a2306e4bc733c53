"""The company's systems after it claimed deletion (CASES.md, case 1): its recorder's
directory (other files only), a backup directory with copies of manifest items, a visitor
database with photos as BLOB rows, an object-store bucket with more copies, and a second
host — a backup server — clean until an old backup is restored onto it a month later."""

from __future__ import annotations

import io
import random
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deletion_audit.demo.evidence import Evidence, Item
from deletion_audit.demo.processes import DemoError, wait_for

TABLE = "visitor_photos"
BUCKET = "sales-office"
PREFIX = "lobby/"


@dataclass(frozen=True)
class Leftovers:
    """Which manifest items remain where (disjoint sets)."""

    backup: tuple[Item, ...]
    rows: tuple[Item, ...]
    objects: tuple[Item, ...]


def choose_leftovers(evidence: Evidence) -> Leftovers:
    """About 2 % of all items copied to the backup directory, and 0.5 % of the images each
    as database rows and as bucket objects (at least 3 of each), chosen from the seed."""
    rng = random.Random(f"{evidence.seed}:leftovers")
    everything = list(evidence.items)
    rng.shuffle(everything)
    n_backup = max(3, round(len(everything) * 0.02))
    backup, rest = everything[:n_backup], everything[n_backup:]
    images = [i for i in rest if i.kind == "image"]
    n_each = max(3, round(evidence.counts.images * 0.005))
    return Leftovers(backup=tuple(backup), rows=tuple(images[:n_each]),
                     objects=tuple(images[n_each:2 * n_each]))


def other_files(seed: int, label: str, n: int) -> Iterator[tuple[str, bytes]]:
    """Files the manifest does not list: sales ledgers (CSV) and floor plans (JPEG)."""
    from PIL import Image, ImageDraw

    rng = random.Random(f"{seed}:other:{label}")
    for i in range(n):
        if i % 2 == 0:
            rows = "\n".join(f"{rng.randrange(100, 999)},unit-{rng.randrange(1, 40)},"
                             f"{rng.randrange(1_000_000, 9_000_000)}" for _ in range(20))
            yield f"ledger-{label}-{i:04d}.csv", f"deal,unit,price\n{rows}\n".encode()
            continue
        image = Image.new("RGB", (96, 72), (245, 245, 235))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.randrange(0, 80), rng.randrange(0, 60)
            draw.rectangle((x, y, x + rng.randrange(8, 30), y + rng.randrange(8, 20)),
                           outline=(40, 40, 120))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=80)
        yield f"floorplan-{label}-{i:04d}.jpg", out.getvalue()


def _others(evidence: Evidence, divisor: int) -> int:
    return max(4, evidence.counts.items // divisor)


def build_directories(evidence: Evidence, leftovers: Leftovers, root: Path) -> tuple[Path, Path]:
    """The recorder's directory (cleaned: other files only) and the backup directory
    (copies of ``leftovers.backup`` among other files). Returns both roots."""
    nvr, backup = root / "nvr", root / "backup"
    for directory, label, divisor in ((nvr, "nvr", 50), (backup, "backup", 100)):
        (directory / "office").mkdir(parents=True, exist_ok=True)
        for name, data in other_files(evidence.seed, label, _others(evidence, divisor)):
            (directory / "office" / name).write_bytes(data)
    for item in leftovers.backup:
        # A backup keeps its own layout: what matters is the content.
        target = backup / "2024-archive" / item.relpath.replace("/", "-")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(evidence.path(item).read_bytes())
    return nvr, backup


def build_second_host(evidence: Evidence, root: Path) -> Path:
    """The company's backup server, another machine: in the first month it holds other
    files only. Returns its root."""
    host = root / "backup-server"
    (host / "office").mkdir(parents=True, exist_ok=True)
    for name, data in other_files(evidence.seed, "backup-server", _others(evidence, 100)):
        (host / "office" / name).write_bytes(data)
    return host


def restored_items(leftovers: Leftovers) -> tuple[Item, ...]:
    """What an old backup brings back onto the backup server in the month after: about half
    of the copies once found (and deleted) in the backup directory, at least 3."""
    return leftovers.backup[:max(3, len(leftovers.backup) // 2)]


def restore_backup(evidence: Evidence, items: Sequence[Item], host: Path) -> int:
    """Restore an old backup onto the backup server: ``items`` reappear in a layout of
    their own. Returns the number of files written."""
    for item in items:
        target = host / "restored-2024-q1" / item.relpath.replace("/", "_")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(evidence.path(item).read_bytes())
    return len(items)


def build_database(evidence: Evidence, leftovers: Leftovers, path: Path) -> Path:
    """A visitor database whose photos are BLOB rows: the leftovers among other images.
    (No NULL photo: the agent skips those, and a scan that skipped anything is partial.)"""
    rows: list[tuple[int, bytes]] = [
        (i + 1, evidence.path(item).read_bytes()) for i, item in enumerate(leftovers.rows)]
    for name, data in other_files(evidence.seed, "crm", _others(evidence, 200)):
        if name.endswith(".jpg"):
            rows.append((len(rows) + 1, data))
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, visited_at TEXT, "
                     "photo BLOB)")
        conn.executemany(f"INSERT INTO {TABLE} (id, visited_at, photo) VALUES (?, "  # noqa: S608 - a constant table name
                         "'2024-03-01T10:00:00+08:00', ?)", rows)
    conn.close()
    return path


S3_KEYS = ("demo-access", "demo-secret")


def boto3_module() -> Any:
    """boto3, or DemoError when it is not installed (the object-store scope is skipped)."""
    try:
        import boto3  # type: ignore[import-untyped]  # no stubs in the demo extra
    except ImportError:
        raise DemoError("boto3 is not installed (pip install boto3)") from None
    return boto3


def s3_client(endpoint: str) -> Any:
    return boto3_module().client("s3", endpoint_url=endpoint, aws_access_key_id=S3_KEYS[0],
                                 aws_secret_access_key=S3_KEYS[1], region_name="us-east-1")


def fill_bucket_when_ready(client: Any, evidence: Evidence, items: Sequence[Item]) -> None:
    """Fill the bucket as soon as the gateway takes one: it answers before its filer is
    ready, so making the bucket is retried until it succeeds."""

    def filled() -> bool:
        try:
            fill_bucket(client, evidence, items)
        except Exception as exc:  # botocore raises many kinds while the gateway starts
            if "BucketAlreadyOwnedByYou" in str(exc) or "BucketAlreadyExists" in str(exc):
                raise DemoError(f"the bucket was half made: {exc}") from None
            return False
        return True

    wait_for(filled, timeout=60, what="SeaweedFS to accept a bucket")


def fill_bucket(client: Any, evidence: Evidence, items: Sequence[Item]) -> int:
    """Create the bucket and put the leftovers (and other files) under the prefix;
    returns the number of objects written."""
    client.create_bucket(Bucket=BUCKET)
    n = 0
    for item in items:
        client.put_object(Bucket=BUCKET, Key=PREFIX + item.relpath,
                          Body=evidence.path(item).read_bytes())
        n += 1
    for name, data in other_files(evidence.seed, "bucket", _others(evidence, 200)):
        client.put_object(Bucket=BUCKET, Key=PREFIX + "office/" + name, Body=data)
        n += 1
    return n
