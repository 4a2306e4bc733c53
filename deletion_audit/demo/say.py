"""What the demo prints: one numbered line per step, Chinese first, then English, and
indented detail lines under it."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import FrameType

import click

_NUMBERS = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳㉑㉒㉓㉔㉕㉖㉗㉘㉙㉚"


class Narrator:
    def __init__(self, echo: Callable[[str], None] = click.echo) -> None:
        self.echo = echo
        self.count = 0
        self.started = time.monotonic()
        self.current = ""
        self.timings: list[tuple[str, float]] = []
        """Each step's English line and its start, seconds after the first step began."""
        self.interrupted = False
        """Set by the demo's Ctrl-C (and SIGTERM) handler, which also raises
        KeyboardInterrupt where the signal lands. If it lands in a finalizer (an object's
        ``__del__`` run by the garbage collector), the interpreter swallows that exception
        and the demo would go on: the next step raises it again."""

    def interrupt(self, _signum: int, _frame: FrameType | None) -> None:
        """A signal handler: stop the demo (see ``interrupted``)."""
        self.interrupted = True
        raise KeyboardInterrupt

    def step(self, zh: str, en: str) -> None:
        """``① 检察官立案 … / The prosecutor opens the case …``"""
        if self.interrupted:
            raise KeyboardInterrupt
        number = _NUMBERS[self.count] if self.count < len(_NUMBERS) else f"({self.count + 1})"
        self.count += 1
        self.current = f"{number} {en}"
        self.timings.append((self.current, self.elapsed()))
        self.echo(f"{number} {zh} … / {en} …")

    def detail(self, zh: str, en: str | None = None) -> None:
        self.echo(f"   {zh}" if en is None else f"   {zh} / {en}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def durations(self) -> list[tuple[str, float]]:
        """Each step with the seconds it took (the last one up to now)."""
        ends = [start for _, start in self.timings[1:]] + [self.elapsed()]
        return [(step, end - start) for (step, start), end in zip(self.timings, ends,
                                                                   strict=True)]
