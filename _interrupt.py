"""A Ctrl-C that a long run cannot lose.

Python delivers SIGINT as a KeyboardInterrupt raised in whatever the main thread runs at that
moment. When that is a ``__del__`` method or a weakref callback, Python prints "Exception
ignored in ..." and carries on: the interrupt is gone. SQLAlchemy runs such callbacks around
every ORM query, so about one Ctrl-C in a hundred was dropped and ``cosearch run`` went on
with its 100000 trials (seen as a hung test: the callback was
``sqlalchemy.orm.state._cleanup``).

:func:`latched_interrupts` remembers a SIGINT besides raising it, and
:func:`raise_if_interrupted`, called where the loops of a run are between two steps (a
trial, a screened candidate, a training batch), raises it again if it was dropped; Python's
"Exception ignored" report of the dropped one is not printed.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["latched_interrupts", "raise_if_interrupted"]

_latched = threading.Event()
_depth = 0


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if a SIGINT came while :func:`latched_interrupts` was held."""
    if _latched.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def latched_interrupts() -> Iterator[None]:
    """While the block runs, a SIGINT is also latched for :func:`raise_if_interrupted`; the
    handler in place before (Python's, Jupyter's) still runs as it did. Nested blocks share
    the outermost one's latch; outside the main thread, or where SIGINT is ignored, it does
    nothing."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    before = signal.getsignal(signal.SIGINT)
    if not callable(before):  # SIG_IGN (or SIG_DFL): Ctrl-C is not an exception here
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> Any:
        _latched.set()
        return before(signum, frame)

    hook = sys.unraisablehook

    def quiet(unraisable: Any) -> None:
        # the latch raises it again at the next check: Python's "Exception ignored in ..."
        # with a traceback would only show the user a scary message about a lost Ctrl-C
        if not (_latched.is_set() and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            hook(unraisable)

    _latched.clear()
    signal.signal(signal.SIGINT, handler)
    sys.unraisablehook = quiet
    _depth = 1
    try:
        yield
    finally:
        _depth = 0
        signal.signal(signal.SIGINT, before)
        sys.unraisablehook = hook
        _latched.clear()
