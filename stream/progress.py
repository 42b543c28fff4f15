"""Throttled progress reports for long steps (tiling, cost table): a line every few seconds."""

from __future__ import annotations

import time
from typing import Callable

REPORT_SECONDS = 2.0


class Every:
    """``report(template, *args)`` calls ``progress(template.format(*args))`` when ``seconds``
    have passed since the last report (or the start); it does nothing when ``progress`` is
    None, and formats no message when none is due."""

    def __init__(self, progress: Callable[[str], None] | None, seconds: float | None = None):
        self.progress = progress
        self.seconds = REPORT_SECONDS if seconds is None else seconds
        self.last = time.perf_counter()

    def __call__(self, template: str, *args) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        if now - self.last >= self.seconds:
            self.last = now
            self.progress(template.format(*args))
