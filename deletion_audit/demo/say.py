"""What the demo prints: one numbered line per step, Chinese first, then English, and
indented detail lines under it."""

from __future__ import annotations

import time
from collections.abc import Callable

import click

_NUMBERS = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"


class Narrator:
    def __init__(self, echo: Callable[[str], None] = click.echo) -> None:
        self.echo = echo
        self.count = 0
        self.started = time.monotonic()
        self.current = ""

    def step(self, zh: str, en: str) -> None:
        """``① 检察官立案 … / The prosecutor opens the case …``"""
        number = _NUMBERS[self.count] if self.count < len(_NUMBERS) else f"({self.count + 1})"
        self.count += 1
        self.current = f"{number} {en}"
        self.echo(f"{number} {zh} … / {en} …")

    def detail(self, zh: str, en: str | None = None) -> None:
        self.echo(f"   {zh}" if en is None else f"   {zh} / {en}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started
