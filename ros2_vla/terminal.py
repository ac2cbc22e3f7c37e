"""Single keys from a terminal (or lines from a pipe), for the CLIs that take keys: teleop, record."""

from __future__ import annotations

import os
import select
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def cbreak(fd: int) -> Iterator[None]:
    """Keys without Enter and without echo; the old terminal settings come back whatever happens."""
    import termios
    import tty

    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)  # not setraw: output keeps its newline handling and Ctrl-C still interrupts
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


class KeySource:
    """Keys from stdin, never blocking past `timeout`; None at end of input.

    A terminal gives whatever keys arrived. A pipe gives one line at a time (each of its characters a
    key), so each line becomes at most one chunk however fast the lines were written.
    """

    def __init__(self, fd: int, is_tty: bool) -> None:
        self.fd, self.is_tty = fd, is_tty
        self._buffer, self._eof = "", False

    def read(self, timeout: float) -> list[str] | None:
        if not self.is_tty and "\n" in self._buffer:
            return self._line()
        if self._eof:
            return self._line() if self._buffer else None
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        data = os.read(self.fd, 4096)
        if not data:
            self._eof = True
            return self._line() if self._buffer else None
        text = data.decode("utf-8", errors="ignore")
        if self.is_tty:
            return [] if text.startswith("\x1b") else list(text)  # arrow/function keys: escape sequences, unbound
        self._buffer += text
        return self._line() if "\n" in self._buffer else []

    def _line(self) -> list[str]:
        line, _, self._buffer = self._buffer.partition("\n")
        return list(line.rstrip("\r"))


@contextmanager
def no_terminal_mode() -> Iterator[None]:
    yield
