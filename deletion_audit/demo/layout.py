"""What the demo writes into ``--out``, and making it fresh for a new run (the evidence
tree is kept when it was generated from the same seed and scale)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from deletion_audit.demo.processes import DemoError

MARKER = ".deletion-audit-demo"


@dataclass(frozen=True)
class Layout:
    out: Path

    @property
    def evidence(self) -> Path:
        return self.out / "evidence"

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def keys(self) -> Path:
        return self.out / "keys"

    @property
    def manifest_dir(self) -> Path:
        return self.out / "manifest"

    @property
    def manifest(self) -> Path:
        return self.manifest_dir / "manifest.jsonl"

    @property
    def envelope(self) -> Path:
        return self.manifest_dir / "manifest.dsse.json"

    @property
    def company(self) -> Path:
        return self.out / "company"

    @property
    def agent(self) -> Path:
        return self.out / "agent"

    @property
    def agent_config(self) -> Path:
        return self.agent / "agent.toml"

    @property
    def second_agent(self) -> Path:
        """The agent on the company's second host (its backup server)."""
        return self.out / "agent-backup-server"

    @property
    def second_agent_config(self) -> Path:
        return self.second_agent / "agent.toml"

    @property
    def bundles(self) -> Path:
        return self.out / "bundles"

    @property
    def logs(self) -> Path:
        return self.out / "logs"

    @property
    def verifier_key(self) -> Path:
        return self.out / "log-verifier-key.txt"

    @property
    def summary(self) -> Path:
        return self.out / "SUMMARY.md"

    def key(self, person: str) -> Path:
        return self.keys / f"{person}.key"

    def token_file(self, person: str) -> Path:
        return self.keys / f"{person}.token"

    def _run_outputs(self) -> list[Path]:
        """Everything a run writes except the evidence tree (and its marker)."""
        return [self.data, self.keys, self.manifest_dir, self.company, self.agent,
                self.second_agent, self.bundles, self.logs, self.verifier_key, self.summary]

    def prepare(self) -> None:
        """Make ``out`` ready for a fresh run. A directory an earlier demo wrote is
        cleared (its evidence kept for reuse); any other non-empty directory is refused,
        so the demo never deletes what it did not write."""
        marker = self.out / MARKER
        if self.out.exists():
            if not self.out.is_dir():
                raise DemoError(f"--out {self.out} is a file; give a directory")
            if any(self.out.iterdir()) and not marker.exists():
                raise DemoError(f"--out {self.out} holds files the demo did not write; give "
                                "an empty or new directory")
        self.out.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"written_by": "deletion-audit demo"}) + "\n")
        for path in self._run_outputs():
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        for directory in (self.keys, self.manifest_dir, self.company, self.agent,
                          self.second_agent, self.bundles, self.logs):
            directory.mkdir(mode=0o700)


def write_secret(path: Path, text: str) -> Path:
    """A new file readable by its owner only (0600), created exclusively."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path
