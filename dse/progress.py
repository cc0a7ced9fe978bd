"""One progress display for long work: a tqdm bar on a terminal, throttled plain lines otherwise (CI, pipes)."""
from __future__ import annotations

import os
import sys
import time


def interactive(stream=None) -> bool:
    """True on a real terminal outside CI."""
    stream = stream or sys.stderr
    return stream.isatty() and os.environ.get("CI", "").lower() not in ("1", "true", "yes")


def duration(s: float) -> str:
    """12s, 3m05s, 1h02m."""
    s = int(round(s))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


class Progress:
    """A tqdm bar on a terminal; without one, a plain line (done/total, text, elapsed, ETA) at most every `every`
    seconds (0: only the final line, unless final=False). `initial` counts work done before this run (not in the ETA);
    `delay` seconds pass before a bar first shows (short work shows none)."""

    def __init__(self, total: int, desc: str, *, every: float = 10.0, stream=None, enabled: bool = True,
                 initial: int = 0, final: bool = True, delay: float = 0.0):
        self._stream = stream  # None: sys.stderr at the time of writing (a stored stream would not pickle)
        self.total, self.desc, self.every, self.initial = total, desc, every, initial
        self.enabled, self.final = enabled, final
        self.bar = None
        self.t0 = self.last = time.monotonic()
        self.done, self.text, self.shown = initial, "", None  # shown: (done, text) of the last plain line
        if enabled and interactive(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, file=self.stream, leave=True, delay=delay,
                            dynamic_ncols=True, unit="trial" if "trial" in desc else "it")

    @property
    def stream(self):
        return self._stream or sys.stderr

    def line(self) -> str:
        """The plain status line."""
        el = time.monotonic() - self.t0
        fin, left = self.done - self.initial, self.total - self.done
        eta = f"ETA {duration(el / fin * left)}" if fin > 0 and left > 0 else ("ETA ?" if left > 0 else "finished")
        return (f"{self.desc}: {self.done}/{self.total}" + (f", {self.text}" if self.text else "")
                + f", {duration(el)} elapsed, {eta}")

    def set_total(self, total: int) -> None:
        self.total = total
        if self.bar is not None:
            self.bar.total = total

    def update(self, done: int | None = None, text: str | None = None, force: bool = False) -> None:
        if done is not None:
            self.done = done
        if text is not None:
            self.text = text
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.n = self.done
            self.bar.set_postfix_str(self.text, refresh=False)
            self.bar.refresh()
        elif force or (self.every and time.monotonic() - self.last >= self.every):
            self.last = time.monotonic()
            self._print()

    def _print(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self.shown = (self.done, self.text)

    def close(self) -> None:
        """Close the bar, or print the final plain line (once)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled and self.final and self.shown != (self.done, self.text):
            self._print()
        self.enabled = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
