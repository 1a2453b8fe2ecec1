"""A batch's passes on several CPU threads at once, each thread with its own share of torch's threads.

On a CPU, the passes of a corpus batch (tens of texts, tens of tokens each) keep a second core busy poorly through
torch's intra-op threads: every matrix is split in two, and the Python and autograd work between the operations runs
on one core. Two passes at once, one torch thread each, do the same passes in less time (benchmarks/corpus.py; on
a 2-core CPU see docs/benchmarks.md). Each pass computes exactly what it would alone, so results do not change;
only the thread that runs it does. Hooks that keep per-pass state keep it per thread
(`explain.corpus.packed.Rows`). On a GPU the passes stay one after another: the device already runs each pass in
parallel.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

from explain.models import LoadedModel

Item = TypeVar("Item")
Result = TypeVar("Result")


def stream_count(loaded: LoadedModel, passes: int) -> int:
    """How many passes run at once: one per torch thread on a CPU (at most one per pass), one on other devices."""
    if loaded.device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), passes))


def split_evenly(group: Sequence[Item], streams: int) -> list[list[Item]]:
    """A group of (length-sorted) texts as `streams` consecutive parts of near-equal size, so that every thread gets
    a share of each group. A batch holds few groups (3 or 4 of 64 texts on benchmarks/corpus.py's set), so whole
    groups would leave one thread waiting for the other; a pass more per group costs less than that wait (46.7
    against 43.6 texts/s there, one stream 39.5)."""
    n = max(1, min(streams, len(group)))
    return [list(group[k * len(group) // n:(k + 1) * len(group) // n]) for k in range(n)]


def run_streams(work: Callable[[Item], Result], items: Sequence[Item], costs: Sequence[float],
                streams: int) -> list[Result]:
    """work(item) of every item, in the items' order, on `streams` threads sharing torch's threads; the costliest
    items start first, so the threads finish close together.

    A thread keeps its own torch thread count once it has read it, and a new thread starts with the count last set
    anywhere in the process; so each worker sets and reads its share, and once all have, the process's count is set
    back before the passes run: other threads (a server's sessions) keep theirs meanwhile."""
    streams = min(streams, len(items))
    if streams <= 1:
        return [work(item) for item in items]
    threads = torch.get_num_threads()
    share = max(1, threads // streams)
    started = threading.Barrier(streams + 1, timeout=60)

    def start() -> None:
        torch.set_num_threads(share)
        torch.get_num_threads()
        started.wait()

    order = sorted(range(len(items)), key=lambda i: -costs[i])
    with ThreadPoolExecutor(max_workers=streams, thread_name_prefix="corpus-pass", initializer=start) as pool:
        try:
            futures = {i: pool.submit(work, items[i]) for i in order}
            started.wait()
        finally:
            torch.set_num_threads(threads)
        results = {i: future.result() for i, future in futures.items()}
    return [results[i] for i in range(len(items))]
