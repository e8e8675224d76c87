"""How every command-line tool of the suite ends on bad input, a full disk or Ctrl-C.

A failed check or an unreadable file is one line on stderr naming the file and the problem,
exit status 1; Ctrl-C is one line and exit status 130 (outputs already finished stay, since
every writer is atomic). Programming errors keep their traceback.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool

from tqdm import tqdm

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
# Failed checks raise ValueError subclasses (TrialFileError, ...); unreadable or unwritable
# files raise OSError.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, BrokenProcessPool)


def one_line(error: BaseException) -> str:
    """The first line of an error's message, with the file named for OS errors."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        where = error.filename or "output"
        return f"{where}: no space left on device"
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _say(line: str) -> None:
    """One line on stderr, on a line of its own even while a progress bar is drawn."""
    tqdm.write(line, file=sys.stderr)


def run_command(prog: str, command: Callable[[], int | None],
                user_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run ``command`` and turn user errors and Ctrl-C into one line and an exit status.

    ``prog`` starts the line (e.g. ``"k2muse process"``); ``user_errors`` extends
    :data:`USER_ERRORS` with a tool's own error types.
    """
    try:
        status = command()
    except KeyboardInterrupt:
        _say(f"{prog}: interrupted (finished outputs are kept)")
        return EXIT_INTERRUPTED
    except (*USER_ERRORS, *user_errors) as error:
        _say(f"{prog}: error: {one_line(error)}")
        return EXIT_ERROR
    return 0 if status is None else int(status)
