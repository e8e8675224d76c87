"""How every command-line tool of the suite ends on bad input, a full disk or Ctrl-C.

A failed check or an unreadable file is one line on stderr naming the file and the problem,
exit status 1; Ctrl-C is one line and exit status 130 (outputs already finished stay, since
every writer is atomic). Programming errors keep their traceback.

This module imports only the standard library, so a console script made by ``cli_entry``
handles Ctrl-C from its first line on, while the tool's heavy modules are still importing.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
# Failed checks raise ValueError subclasses (TrialFileError, ...); unreadable or unwritable
# files raise OSError; a worker pool whose process died raises BrokenProcessPool.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, BrokenExecutor)


def one_line(error: BaseException) -> str:
    """The first line of an error's message, with the file named for OS errors."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        where = error.filename or "output"
        return f"{where}: no space left on device"
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _say(line: str) -> None:
    """One line on stderr, on a line of its own even while a progress bar is drawn."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def _interrupted(prog: str) -> int:
    _say(f"{prog}: interrupted (finished outputs are kept)")
    return EXIT_INTERRUPTED


def run_command(prog: str, command: Callable[[], int | None],
                user_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run ``command`` and turn user errors and Ctrl-C into one line and an exit status.

    ``prog`` starts the line (e.g. ``"k2muse process"``); ``user_errors`` extends
    :data:`USER_ERRORS` with a tool's own error types.
    """
    try:
        status = command()
    except KeyboardInterrupt:
        return _interrupted(prog)
    except (*USER_ERRORS, *user_errors) as error:
        _say(f"{prog}: error: {one_line(error)}")
        return EXIT_ERROR
    return 0 if status is None else int(status)


def cli_entry(prog: str, module: str) -> Callable[[], int]:
    """The console entry point of the tool whose ``main()`` is in ``module``.

    Ctrl-C while ``module`` imports (seconds for torch or scikit-learn) ends the process at
    once with one line and status 130: nothing has been written yet, and unwinding a
    KeyboardInterrupt through half-imported libraries prints their tracebacks.
    """

    def stop_before_start(_signum, _frame) -> None:
        os.write(2, f"{prog}: interrupted\n".encode())
        os._exit(EXIT_INTERRUPTED)

    def main() -> int:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, stop_before_start)
        try:
            tool_main = importlib.import_module(module).main
        finally:
            if signal.getsignal(signal.SIGINT) is stop_before_start:
                signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return tool_main()
        except KeyboardInterrupt:  # while the arguments are parsed, before run_command
            return _interrupted(prog)

    main.cli_module = module
    main.__doc__ = f"Run ``{prog}`` (``{module}.main``); Ctrl-C is one line from the start."
    return main


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[Callable[[], bool]]:
    """Inside the block Ctrl-C only sets a flag; yield ``interrupted()`` to check it.

    The default handler raises KeyboardInterrupt at whatever bytecode runs: inside a weakref
    callback or finaliser (concurrent.futures, multiprocessing) Python prints "Exception
    ignored ... Traceback" and drops it, and inside a pool's bookkeeping it can leave locks
    held. The caller stops at its own safe points instead; a Ctrl-C it did not act on is
    raised when the block ends. Where Ctrl-C is not the default (ignored, a thread other
    than the main one), nothing changes.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield lambda: False
        return
    caught = threading.Event()
    signal.signal(signal.SIGINT, lambda _signum, _frame: caught.set())
    try:
        yield caught.is_set
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught.is_set():
        raise KeyboardInterrupt
