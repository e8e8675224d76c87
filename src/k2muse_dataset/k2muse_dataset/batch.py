"""Independent calls, ``jobs`` worker processes at a time, that Ctrl-C stops cleanly.

Ctrl-C (and a failed call) stops the batch between calls: no new call starts, those under way
finish, so their outputs are complete, and only then is KeyboardInterrupt (the failure) raised
in the caller, never inside the pool's machinery (see ``cli_errors.interrupts_deferred``).
Workers are forked and ignore Ctrl-C from their first instruction, so a Ctrl-C in a terminal,
which reaches every process of the group, prints nothing from them.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from tqdm import tqdm

from .cli_errors import interrupts_deferred


def run_batch(fn: Callable, argument_lists: Sequence[tuple], jobs: int, desc: str = "",
              progress: bool = False) -> list:
    """``fn(*args)`` for every tuple of ``argument_lists``; the results in the same order."""
    with interrupts_deferred() as interrupted:
        if jobs <= 1 or len(argument_lists) <= 1:
            results = []
            for args in tqdm(argument_lists, desc=desc, disable=not progress):
                if interrupted():
                    raise KeyboardInterrupt
                results.append(fn(*args))
            return results
        # Forked workers start with the parent's handler (inside this block: set a flag),
        # then ignore SIGINT; a spawned interpreter would take the default one while importing.
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"),
                                 initializer=signal.signal,
                                 initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
            futures = [pool.submit(fn, *args) for args in argument_lists]
            running, failure = set(futures), None
            with tqdm(total=len(futures), desc=desc, disable=not progress) as bar:
                while running and failure is None and not interrupted():
                    done, running = wait(running, timeout=0.1, return_when=FIRST_COMPLETED)
                    bar.update(len(done))
                    failure = next((f.exception() for f in done if f.exception()), None)
            if running:  # Ctrl-C or a failed call: start no more, let those under way finish
                pool.shutdown(wait=True, cancel_futures=True)
            if failure is not None:
                raise failure
            if interrupted():
                raise KeyboardInterrupt
            return [future.result() for future in futures]
