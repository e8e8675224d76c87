"""Independent fits fanned out through joblib: local processes, or a Dask or Ray cluster.

Training folds and baseline combinations do not depend on each other, so they are plain
function calls handed to ``joblib.Parallel``. Which engine runs them is joblib's choice of
backend: ``local`` (loky processes on this machine), ``dask`` (a ``distributed`` cluster: a
LocalCluster started here, or an existing scheduler's address) or ``ray`` (``ray.init``,
local or an existing cluster's address). There is no scheduler of our own.

Each call sets torch's thread count in the process that runs it, so ``jobs`` processes with
``threads_per_job`` threads each do not oversubscribe the cores.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing import resource_tracker
from typing import Any

import joblib

ENGINES = ("local", "dask", "ray")


def threads_per_job(total_threads: int, jobs: int) -> int:
    """Torch threads for each of ``jobs`` concurrent fits sharing ``total_threads`` cores."""
    return max(1, total_threads // max(1, jobs))


def _call_with_threads(function: Callable[[Any], Any], task: Any, threads: int | None) -> Any:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return function(task)


@contextlib.contextmanager
def engine(backend: str, jobs: int, address: str | None = None) -> Iterator[None]:
    """Make ``backend`` joblib's engine inside the block (starting a local cluster if needed)."""
    if backend == "local":
        with joblib.parallel_config(backend="loky", n_jobs=jobs):
            yield
    elif backend == "dask":
        try:
            from distributed import Client, LocalCluster
        except ImportError as error:
            raise RuntimeError("--backend dask needs the 'distributed' package "
                               "(pip install distributed)") from error
        with contextlib.ExitStack() as stack:
            if address is None:
                cluster = stack.enter_context(LocalCluster(
                    n_workers=jobs, threads_per_worker=1, processes=True,
                    dashboard_address=None))
                address = cluster.scheduler_address
            stack.enter_context(Client(address))
            stack.enter_context(joblib.parallel_config(backend="dask", n_jobs=jobs))
            yield
    elif backend == "ray":
        try:
            import ray
            from ray.util.joblib import register_ray
        except ImportError as error:
            raise RuntimeError("--backend ray needs the 'ray' package (pip install ray)") \
                from error
        register_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=address, num_cpus=None if address else jobs)
        try:
            with joblib.parallel_config(backend="ray", n_jobs=jobs):
                yield
        finally:
            if started:
                ray.shutdown()
    else:
        raise ValueError(f"unknown parallel backend {backend!r}; choose from {ENGINES}")


def _result_form() -> str:
    """Results as they finish where the active joblib engine can hand them out one by one.

    joblib's Ray backend (a multiprocessing pool underneath) cannot: there the results come
    as one list once every call is done.
    """
    from joblib.parallel import get_active_backend

    active, _ = get_active_backend()
    return "generator" if active.supports_return_generator else "list"


def run_all(function: Callable[[Any], Any], tasks: Sequence[Any], jobs: int = 1,
            backend: str = "local", threads: int | None = None, address: str | None = None
            ) -> Iterable[Any]:
    """``function(task)`` for every task, results in task order, as they become available.

    ``jobs=1`` with the local backend runs in this process (no copies of the data);
    otherwise each task runs in a worker. ``threads`` sets torch's thread count where the task
    runs (None: leave it; joblib's local workers already cap BLAS threads per worker).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if jobs == 1 and backend == "local":
        yield from (_call_with_threads(function, task, threads) for task in tasks)
        return
    # scikit-learn's Parallel is joblib's, plus the estimator configuration handed to workers.
    from sklearn.utils.parallel import Parallel, delayed

    with engine(backend, jobs, address):
        calls = (delayed(_call_with_threads)(function, task, threads) for task in tasks)
        # Local workers are new interpreters that would take Ctrl-C (which a terminal sends
        # to every process of the group) as a KeyboardInterrupt traceback while they import:
        # they start with SIGINT blocked, as the mask survives exec; this process takes it
        # once they run (Parallel has started them when it returns) and joblib stops them.
        # The standard resource tracker is started first: starting it unblocks SIGINT.
        mask = None
        if backend == "local":
            resource_tracker.ensure_running()
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            results = Parallel(return_as=_result_form())(calls)
        finally:
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        yield from results
