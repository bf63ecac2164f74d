"""What the installer prints: the plan, each change, notes."""

from __future__ import annotations

import os
import sys


class InstallError(Exception):
    """A problem the user must fix; the command line prints it as one clear line and exits 1."""


class Reporter:
    """Prints the plan or what happened; tests read ``lines``; ``changes`` counts writes."""

    def __init__(self, quiet: bool = False, stream=None) -> None:
        self.quiet = quiet
        self.stream = stream
        self.lines: list[str] = []
        self.changes = 0

    def say(self, text: str = "") -> None:
        self.lines.append(text)
        if self.quiet:
            return
        try:
            print(text, file=self.stream or sys.stdout, flush=True)
        except BrokenPipeError:
            # `install.py | head`: stop printing but finish the work (never stop half-way).
            self.quiet = True
            if self.stream is None:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())

    def change(self, text: str) -> None:
        self.changes += 1
        self.say(text)
