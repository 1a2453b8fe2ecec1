"""Shared helpers for the benchmark scripts: the machine, the model, the text, timing, tables.

Benchmarks print figures; they assert nothing about speed.
"""

from __future__ import annotations

import datetime
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

from explain.models import LoadedModel, configure_threads, embedded_model_path  # noqa: E402

N_TOKENS = 128
SEED = 0
INSTALL_PEERS = "make peers"
PARAGRAPH = (
    "The service at the little restaurant by the harbour was painfully slow, and the waiter forgot our "
    "drinks twice, but the food itself was wonderful: the fish soup was rich and smoky, the bread came "
    "warm from the oven, and the lemon tart was the best dessert we have had in years. Prices were fair "
    "for the portions, although the wine list was short and the house red tasted thin. We waited forty "
    "minutes for a table even with a booking, the room was loud, and the chairs were hard, yet the staff "
    "apologised, brought free olives and stayed cheerful all evening. I would go back for the cooking "
    "alone, but only on a quiet weekday and never in a hurry; friends who care about speed should look "
    "elsewhere, while anyone who loves honest seafood will forgive almost everything here."
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device() -> torch.device:
    """CUDA when present (the code under test must use it), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def machine_header() -> str:
    import captum
    import transformers

    dev = device()
    accel = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "none (CPU)"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}\n"
        f"- machine: {os.cpu_count()} CPU cores (nproc), {cpu_model()}; accelerator: {accel}; "
        f"torch threads {torch.get_num_threads()}\n"
        f"- software: Python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, captum {captum.__version__}\n"
        f"- load average at start (1, 5, 15 min): {load}"
    )


def setup() -> None:
    """Threads as the app sets them at start-up (one per core, one inter-op thread)."""
    configure_threads()
    torch.manual_seed(SEED)


def cpu_busy(seconds: float = 2.0) -> float:
    """Fraction of all CPU time spent busy over the next `seconds` (from /proc/stat; 0 where unavailable)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def other_benchmarks() -> list[int]:
    """Pids of other processes running a script from benchmarks/ (not this one or its parents)."""
    mine = {os.getpid(), os.getppid()}
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(entry.name)
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if pid not in mine and "benchmarks/" in cmdline and "python" in cmdline:
            found.append(pid)
    return found


def wait_for_idle(max_seconds: float, load: float = 0.5, busy: float = 0.15) -> float:
    """Wait (up to `max_seconds`) until no other benchmark script runs, the 1-minute load average is
    below `load` and the CPUs are less than `busy` busy over a few seconds; return the load average."""
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        if not other_benchmarks() and os.getloadavg()[0] < load and cpu_busy(3.0) < busy:
            time.sleep(random.uniform(0, 10))  # two waiting runs must not start together
            if not other_benchmarks() and cpu_busy(2.0) < busy:
                break
        time.sleep(5)
    return os.getloadavg()[0]


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def best_time(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """The fastest of `repeats` timed calls (least disturbed by other work), and the last result."""
    best, result = float("inf"), None
    for _ in range(max(1, repeats)):
        sync()
        start = time.perf_counter()
        result = fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best, result


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def tokenizer():
    """The uncased BERT WordPiece tokenizer (30522 tokens) shipped with the embedded MiniLM."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(embedded_model_path()), local_files_only=True)


def text_of_tokens(tok, n_tokens: int = N_TOKENS) -> str:
    """A prefix of PARAGRAPH (repeated as needed) that tokenises to exactly `n_tokens` with [CLS] and [SEP]."""
    words = (PARAGRAPH + " ") * (1 + 2 * n_tokens // len(PARAGRAPH.split()))
    text = ""
    for word in words.split():
        candidate = f"{text} {word}".strip()
        n = len(tok(candidate)["input_ids"])
        if n == n_tokens:
            return candidate
        if n < n_tokens:
            text = candidate
    raise ValueError(f"could not build a text of exactly {n_tokens} tokens")


def bert_base_config(attn: str = "eager"):
    """bert-base size (12 layers x 12 heads, hidden 768), 2 labels, random weights."""
    from transformers import BertConfig

    config = BertConfig(num_labels=2)
    config._attn_implementation = attn
    return config


def bert_base(attn: str = "eager", state: dict | None = None, frozen: bool = True):
    """A random bert-base BertForSequenceClassification (seeded), in eval mode, on `device()`.

    Args:
        state: weights to load (to give several copies the same weights).
        frozen: parameters do not require grad, as explain.load_model leaves them.
    """
    from transformers import BertForSequenceClassification

    torch.manual_seed(SEED)
    model = BertForSequenceClassification(bert_base_config(attn))
    if state is not None:
        model.load_state_dict(state)
    model.to(device()).eval()
    for p in model.parameters():
        p.requires_grad_(not frozen)
    return model


def loaded(model, tok, spec: str = "bert-base (random)") -> LoadedModel:
    """Wrap a model built here as explain's LoadedModel (what load_model returns)."""
    n = int(model.config.num_labels)
    return LoadedModel(
        spec=spec,
        name=spec,
        model=model,
        tokenizer=tok,
        head="classification",
        label_names=[f"LABEL_{i}" for i in range(n)],
        device=next(model.parameters()).device,
    )


def matmul_gflops(size: int = 2048, dtype: torch.dtype = torch.float32, seconds: float = 2.0) -> float:
    """The machine's dense matmul rate (best of several timed batches of size x size products)."""
    dev = device()
    a = torch.randn(size, size, dtype=dtype, device=dev)
    b = torch.randn(size, size, dtype=dtype, device=dev)
    for _ in range(3):
        a @ b
    flops = 2.0 * size**3
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t, _ = best_time(lambda: [a @ b for _ in range(4)], repeats=1)
        best = min(best, t / 4)
    return flops / best / 1e9
