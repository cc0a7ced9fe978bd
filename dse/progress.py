"""One progress display for long work: a live bar on a terminal, throttled plain lines otherwise."""
from __future__ import annotations

import os
import sys
import time


def interactive(stream=None) -> bool:
    """True on a real terminal outside CI."""
    stream = stream or sys.stderr
    return stream.isatty() and os.environ.get("CI", "").lower() not in ("1", "true", "yes")


class Progress:
    """A tqdm bar on a terminal; without one, a plain line at most every `every` seconds (0: never)."""

    def __init__(self, total: int, desc: str, *, every: float = 10.0, stream=None, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.total, self.desc, self.every = total, desc, every
        self.enabled = enabled
        self.bar = None
        self.last = time.monotonic()
        if enabled and interactive(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, file=self.stream, leave=False, dynamic_ncols=True)

    def update(self, done: int, text: str = "") -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.n = done
            if text:
                self.bar.set_postfix_str(text, refresh=False)
            self.bar.refresh()
        elif self.every and time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            print(f"{self.desc}: {done}/{self.total}" + (f" {text}" if text else ""), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
