"""Runs side by side in worker processes: the one process pool of every experiment driver."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

import torch
from tqdm import tqdm

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def map_side_by_side(
    function: Callable[..., Outcome],
    items: Sequence[Item],
    processes: int,
    threads: int,
    *extra: object,
    unit: str = "run",
) -> list[Outcome]:
    """``[function(item, *extra) for item in items]`` in ``processes`` worker processes.

    Each worker runs with ``threads`` torch threads; the outcomes come back in the order of
    ``items`` and the first failure is raised at once. ``function`` must be importable
    (a module-level function): workers are spawned, because fork would copy torch's thread
    pools.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_worker_init, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(function, item, *extra) for item in items]
        with tqdm(total=len(items), desc=f"{unit}s ({processes} at a time)", unit=unit) as bar:
            for future in as_completed(futures):
                future.result()  # raises the first failure at once
                bar.update(1)
        return [future.result() for future in futures]
