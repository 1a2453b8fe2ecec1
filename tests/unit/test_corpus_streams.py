"""Passes at once (explain.corpus.streams): a batch on two threads writes the tables of one thread, each thread keeps
its own padding in the real-tokens-only layers, every thread gets a share of each group, and torch's thread count is
back after the batch, also when a pass fails."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from explain.corpus.batch import BatchRunner
from explain.corpus.packed import packed_layers, real_tokens_only
from explain.corpus.readers import CorpusRow
from explain.corpus.request import CorpusJob
from explain.corpus.streams import run_streams, split_evenly

WORDS = "the film was good but the service was too slow and the food was bad".split()
TEXTS = [" ".join(WORDS[:n]) for n in (1, 2, 3, 5, 8, 12, 15, 15, 4, 9, 6, 7, 11, 13, 2, 3)]


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def batch_tables(loaded, methods, streams):
    job = CorpusJob(source="unused.csv", model="tiny", methods=methods, faithfulness=True)
    rows = [CorpusRow(row=i + 1, id=f"t{i}", text=text) for i, text in enumerate(TEXTS)]
    threads: set[str] = set()
    handle = loaded.model.register_forward_hook(lambda m, a, o: threads.add(threading.current_thread().name))
    try:
        tables = BatchRunner(job, loaded, streams=streams).process(rows, 0)
    finally:
        handle.remove()
    return tables, threads


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_a_batch_on_two_threads_writes_the_tables_of_one(tiny_models, tiny_roberta, two_threads, family):
    loaded = (tiny_models if family == "bert" else tiny_roberta)["classification"]
    methods = ("gradient_x_input", "integrated_gradients")
    one, one_threads = batch_tables(loaded, methods, streams=1)
    two, two_threads_seen = batch_tables(loaded, methods, streams=2)
    assert len(one_threads) == 1
    assert len({name for name in two_threads_seen if name.startswith("corpus-pass")}) == 2
    assert torch.get_num_threads() == 2
    for table in ("texts", "words", "faithfulness"):
        a, b = one[table].to_pandas(), two[table].to_pandas()
        assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
        for column in a.columns:
            if a[column].dtype.kind == "f":
                np.testing.assert_allclose(b[column], a[column], rtol=1e-4, atol=1e-6, err_msg=column)
            else:
                assert b[column].tolist() == a[column].tolist(), column


def test_each_thread_keeps_its_own_padding_in_the_real_tokens_only_layers(tiny_models):
    loaded = tiny_models["encoder"]
    found = packed_layers(loaded)
    assert found is not None
    # One shape, the real tokens of each where the other has pads.
    ids = {"first": torch.tensor([[2, 5, 6, 7, 8, 9, 3], [2, 5, 3, 0, 0, 0, 0]]),
           "second": torch.tensor([[2, 5, 3, 0, 0, 0, 0], [2, 9, 8, 7, 8, 9, 3]])}
    with torch.no_grad():
        alone = {k: loaded.encoder(input_ids=v, attention_mask=(v != 0).long()).last_hidden_state
                 for k, v in ids.items()}
    # Both threads read their masks before either packs a layer, so shared state would give one the other's rows.
    both_read = threading.Barrier(2, timeout=30)

    def wait_for_the_other(module: torch.nn.Module, args: tuple) -> None:
        both_read.wait()

    wait = found[0][0].register_forward_pre_hook(wait_for_the_other)
    out: dict[str, torch.Tensor | BaseException] = {}

    def run(key: str) -> None:
        try:
            with torch.no_grad():
                out[key] = loaded.encoder(input_ids=ids[key], attention_mask=(ids[key] != 0).long()).last_hidden_state
        except BaseException as exc:  # noqa: BLE001 - reported below
            out[key] = exc

    try:
        with loaded.lock, real_tokens_only(loaded):
            threads = [threading.Thread(target=run, args=(key,)) for key in ids]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        wait.remove()
    for key, v in ids.items():
        got = out[key]
        assert isinstance(got, torch.Tensor), got
        real = (v != 0)
        torch.testing.assert_close(got[real], alone[key][real], rtol=1e-5, atol=1e-6)


def test_every_thread_gets_a_share_of_each_group():
    assert split_evenly(list(range(7)), 2) == [[0, 1, 2], [3, 4, 5, 6]]
    assert split_evenly([1], 2) == [[1]]
    assert split_evenly(list(range(6)), 1) == [list(range(6))]
    parts = split_evenly(list(range(10)), 3)
    assert sum(parts, []) == list(range(10)) and {len(p) for p in parts} <= {3, 4}


def count_on_a_new_thread() -> int:
    found: list[int] = []
    thread = threading.Thread(target=lambda: found.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return found[0]


def test_results_keep_the_items_order_and_other_threads_keep_the_process_thread_count(two_threads):
    seen: list[int] = []
    elsewhere: list[int] = []

    def work(item: int) -> tuple[int, int]:
        seen.append(torch.get_num_threads())
        elsewhere.append(count_on_a_new_thread())  # as a server session started meanwhile
        return item * item, torch.get_num_threads()

    results = run_streams(work, [1, 2, 3, 4, 5], costs=[1, 5, 2, 4, 3], streams=2)
    assert [r[0] for r in results] == [1, 4, 9, 16, 25]
    assert set(seen) == {1}  # each of two threads on one of torch's two
    assert set(elsewhere) == {2}
    assert torch.get_num_threads() == 2 and count_on_a_new_thread() == 2

    def fail(item: int) -> int:
        raise ValueError(f"pass {item} failed")

    with pytest.raises(ValueError, match="failed"):
        run_streams(fail, [1, 2], costs=[1, 1], streams=2)
    assert torch.get_num_threads() == 2
