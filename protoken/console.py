"""Timestamped progress lines on standard output, one write per line so threads never interleave."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

_write_lock = threading.Lock()


def stamped_logger(who: str) -> Callable[[str], None]:
    """A logger that prints ``[WHO HH:MM:SS] message`` lines."""
    def log(message: str) -> None:
        line = f"[{who} {time.strftime('%H:%M:%S')}] {message}\n"
        with _write_lock:
            sys.stdout.write(line)
            sys.stdout.flush()
    return log
