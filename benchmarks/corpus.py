"""Corpus mode speed and memory, every figure of issue 19 section 6 side by side in one run.

Model: the embedded pretrained all-MiniLM-L6-v2 encoder with a seeded random 2-label head (the convention of
ig_speed.py: transformers-interpret needs a classification head), saved to a temporary folder so that the Ray
actors and the memory subprocesses load the same weights. Target: the predicted class's probability (explain's
class target with no label, transformers-interpret's default).

1. Throughput (texts/s) on N texts of 5-60 words built from the built-in sample's sentences (seeded), for
   gradient x input and default integrated gradients: the local corpus engine on all N texts against the
   per-text `explain.analyze` loop and transformers-interpret's SequenceClassificationExplainer in a loop,
   both timed on the first texts of the same set (they are slow), text by text in turn.
2. The Ray engine (a local Ray: 2 CPUs, a 100 MB object store, no dashboard) with 1 actor (2 torch threads) and 2
   actors (the default here: one per CPU, 1 thread each) against the local engine on the same job.
3. Peak RSS of a gradient x input run on short texts (5-20 words) at two corpus sizes, each in a fresh process.

Prints a Markdown block for docs/benchmarks.md (--out FILE writes it too).
Run: .venv/bin/python benchmarks/corpus.py [--quick] [--out corpus.md]; the Ray figure on the whole 500-text set:
.venv/bin/python benchmarks/corpus.py --only-ray --ray-texts 500 (about 15 min on a quiet 2-core machine)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

SAMPLE = common.ROOT / "explain" / "corpus" / "data" / "sample.csv"
METHODS = ("gradient_x_input", "integrated_gradients")
METHOD_NAMES = {"gradient_x_input": "gradient x input", "integrated_gradients": "integrated gradients (default)"}
PEER = "transformers-interpret"
SPEED_UP_TARGET = 5.0
RAY_TARGET = 1.3
RSS_TARGET = 1.10
WARM_UP = "A short sentence to warm up each loop before it is timed."
RAY_CPUS = 2
RAY_OBJECT_STORE_BYTES = 100 * 1024 * 1024
# Seconds per text (and fixed seconds) on a quiet 2-core machine, to print the run time up front.
COST = {
    "setup": 15.0, "corpus:gradient_x_input": 0.02, "corpus:integrated_gradients": 0.35,
    "loop:gradient_x_input": 0.12, "loop:integrated_gradients": 0.45, "peer:integrated_gradients": 0.5,
    "ray_start": 10.0, "ray_actor": 6.0, "ray_one_thread": 1.6, "rss_start": 10.0, "rss_text": 0.008,
}


@dataclass(frozen=True)
class Sizes:
    """How much each part of the run does."""

    texts: int = 500  # corpus engine, throughput
    loop_texts: int = 100  # per-text analyze loop and peer loop (the first texts of the same set)
    ray_texts: int = 100
    ray_method: str = "integrated_gradients"  # heavy enough per text that Ray's start-up does not dominate
    rss: tuple[int, ...] = (1000, 10000)
    batch_size: int = 64
    max_words: int = 60  # throughput texts have 5 to max_words words (memory texts 5 to 20)


QUICK = Sizes(texts=24, loop_texts=4, ray_texts=24, rss=(100, 300), batch_size=8)


def sample_sentences() -> list[str]:
    with SAMPLE.open(encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f)]


def make_texts(n: int, min_words: int = 5, max_words: int = 60, seed: int = common.SEED) -> list[str]:
    """n texts of min_words to max_words words: seeded runs of the built-in sample's sentences, cut to length."""
    sentences = sample_sentences()
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        length = int(rng.integers(min_words, max_words + 1))
        words: list[str] = []
        while len(words) < length:
            words += sentences[int(rng.integers(len(sentences)))].split()
        texts.append(" ".join(words[:length]))
    return texts


def write_csv(path: Path, texts: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text"])
        writer.writerows([t] for t in texts)
    return path


def save_classifier(folder: Path) -> Path:
    """The embedded MiniLM encoder with a seeded random 2-label head, saved with its tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    source = str(common.embedded_model_path())
    torch.manual_seed(common.SEED)
    model = BertForSequenceClassification.from_pretrained(source, num_labels=2, local_files_only=True,
                                                          use_safetensors=True)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(folder)
    return folder


def job_for(source: Path, model: str, method: str, batch_size: int):
    from explain.corpus import CorpusColumns, CorpusJob
    from explain.records import TargetSpec

    return CorpusJob(source=str(source), columns=CorpusColumns(text="text"), model=model, methods=(method,),
                     target=TargetSpec("class"), batch_size=batch_size)


def cpu_seconds() -> float:
    """This process's CPU seconds so far, all threads (`resource.getrusage`, RUSAGE_SELF)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loaded_job(n_texts: int, method: str, batch_size: int = 64):
    """(model folder, loaded model, texts, job) of the first `n_texts` of this benchmark's 500 texts, in a new temporary
    folder: the setup of the interleaved CPU benchmarks (corpus_cpu.py, corpus_streams.py)."""
    from explain.models import load_model

    folder = Path(tempfile.mkdtemp())
    model_dir = str(save_classifier(folder / "model"))
    texts = make_texts(500)[:n_texts]
    return model_dir, load_model(model_dir), texts, job_for(write_csv(folder / "texts.csv", texts), model_dir, method,
                                                           batch_size)


def run_corpus(job, loaded=None, engine: str = "local", actors: int = 1) -> tuple[float, int]:
    """Seconds and texts of one fresh run of `job` (a new run folder each time: nothing resumed)."""
    from explain.corpus import run_job

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        outcome = run_job(job, Path(folder) / "run", engine=engine, loaded=loaded, actors=actors)
        seconds = time.perf_counter() - start
    if outcome.status != "done" or outcome.failed:
        raise RuntimeError(f"corpus run ended {outcome.status} with {outcome.failed} failed texts")
    return seconds, outcome.texts


def import_peer():
    """transformers-interpret, or None and why."""
    try:
        import transformers_interpret
    except ImportError:
        return None, f"not installed (`{common.INSTALL_PEERS}`)"
    except Exception as exc:  # noqa: BLE001 - a peer broken by a newer transformers is reported, not fatal
        return None, f"does not import: {type(exc).__name__}: {exc}"
    return transformers_interpret, ""


def interleaved_loops(texts: list[str], calls: dict[str, Callable[[str], object]]) -> dict[str, float]:
    """Texts/s of each call, run text by text in turn (one untimed warm-up call each, on another text)."""
    for call in calls.values():
        call(WARM_UP)
    seconds = dict.fromkeys(calls, 0.0)
    for text in texts:
        for name, call in calls.items():
            start = time.perf_counter()
            call(text)
            seconds[name] += time.perf_counter() - start
    return {name: len(texts) / s for name, s in seconds.items()}


def throughput(sizes: Sizes, model_dir: str, loaded, source: Path, texts: list[str], peer) -> list[dict]:
    from explain import AnalysisRequest, analyze
    from explain.records import TargetSpec

    rows = []
    loop_texts = texts[: sizes.loop_texts]
    peer_explainer = None
    if peer is not None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        peer_model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True)
        peer_explainer = peer.SequenceClassificationExplainer(peer_model, AutoTokenizer.from_pretrained(model_dir))
    warm_up = write_csv(source.parent / "warm-up.csv", [WARM_UP])
    for method in METHODS:
        run_corpus(job_for(warm_up, model_dir, method, sizes.batch_size), loaded)  # untimed, as the loops' warm-up
        seconds, done = run_corpus(job_for(source, model_dir, method, sizes.batch_size), loaded)
        calls: dict[str, Callable[[str], object]] = {
            "loop": lambda t, m=method: analyze(AnalysisRequest(t, model=model_dir, method=m,
                                                                target=TargetSpec("class")), loaded)}
        if peer_explainer is not None and method == "integrated_gradients":
            calls["peer"] = peer_explainer
        rates = interleaved_loops(loop_texts, calls)
        rows.append({"method": method, "corpus": done / seconds, "corpus_texts": done, "loop_texts": len(loop_texts),
                     **rates})
        log(f"throughput {method}: {rows[-1]}")
    return rows


def run_ray_corpus(job, actors: int) -> tuple[float, dict]:
    """Seconds of one fresh Ray run of `job`, and how it spread the work (the manifest's `ray` entry)."""
    from explain.corpus import run_job

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        outcome = run_job(job, Path(folder) / "run", engine="ray", actors=actors)
        seconds = time.perf_counter() - start
        plan = json.loads((Path(folder) / "run" / "manifest.json").read_text(encoding="utf-8")).get("ray", {})
    if outcome.status != "done" or outcome.failed:
        raise RuntimeError(f"corpus run ended {outcome.status} with {outcome.failed} failed texts")
    return seconds, plan


def ray_runs(sizes: Sizes, model_dir: str, loaded, source: Path) -> dict:
    import ray

    job = job_for(source, model_dir, sizes.ray_method, sizes.batch_size)
    out: dict = {"local": run_corpus(job, loaded)[0]}
    start = time.perf_counter()
    from explain.corpus.engine_ray import worker_runtime_env

    ray.init(address="local", num_cpus=RAY_CPUS, object_store_memory=RAY_OBJECT_STORE_BYTES, include_dashboard=False,
             runtime_env=worker_runtime_env(local=True), log_to_driver=False)
    out["start"] = time.perf_counter() - start
    try:
        for actors in (1, 2):
            out[actors], out[f"plan{actors}"] = run_ray_corpus(job, actors)
    finally:
        ray.shutdown()
    out["version"] = ray.__version__
    log(f"ray: {out}")
    return out


def rss_child(model_dir: str, source: str, batch_size: int) -> None:
    """In a fresh process: load, run gradient x input over `source`, print RSS after the load and at the peak."""
    from explain.models import configure_threads, load_model

    configure_threads()
    loaded = load_model(model_dir)
    after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds, texts = run_corpus(job_for(Path(source), model_dir, "gradient_x_input", batch_size), loaded)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"texts": texts, "seconds": seconds, "after_load_mb": after_load, "peak_mb": peak}))


def rss_runs(sizes: Sizes, model_dir: str, folder: Path) -> list[dict]:
    rows = []
    for n in sizes.rss:
        source = write_csv(folder / f"rss-{n}.csv", make_texts(n, 5, 20, seed=common.SEED + 1))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", str(source), "--model", model_dir,
               "--batch-size", str(sizes.batch_size)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"the memory run of {n} texts failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        log(f"rss {n}: {rows[-1]}")
    return rows


def estimate(sizes: Sizes, peer: bool, ray: bool, rss: bool) -> float:
    c = COST
    total = c["setup"] + sum(c[f"corpus:{m}"] * sizes.texts + c[f"loop:{m}"] * (sizes.loop_texts + 1) for m in METHODS)
    if peer:
        total += c["peer:integrated_gradients"] * (sizes.loop_texts + 1)
    if ray:
        local = c[f"corpus:{sizes.ray_method}"] * sizes.ray_texts
        total += c["ray_start"] + 2 * c["ray_actor"] + (2 + c["ray_one_thread"]) * local
    if rss:
        total += sum(c["rss_start"] + c["rss_text"] * n for n in sizes.rss)
    return total


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def versions(ray_version: str, peer) -> str:
    import captum
    import duckdb
    import pyarrow
    import torch
    import transformers

    parts = [f"Python {platform.python_version()}", f"torch {torch.__version__}",
             f"transformers {transformers.__version__}", f"captum {captum.__version__}",
             f"pyarrow {pyarrow.__version__}", f"duckdb {duckdb.__version__}"]
    if ray_version:
        parts.append(f"ray {ray_version}")
    if peer is not None:
        from importlib.metadata import version

        parts.append(f"transformers-interpret {version('transformers-interpret')}")
    return ", ".join(parts)


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def ray_section(sizes: Sizes, header: dict, ray: dict) -> list[str]:
    """The Ray comparison's lines of the Markdown block."""
    out: list[str] = []
    local = ray["local"]
    out += [f"**Ray engine** on this machine: {METHOD_NAMES[sizes.ray_method]} over the first {sizes.ray_texts} "
            f"texts, a local Ray ({RAY_CPUS} CPUs, {RAY_OBJECT_STORE_BYTES >> 20} MB object store, no dashboard) "
            f"already started (start-up {ray['start']:.1f} s, not counted). Each Ray run counts its actors' "
            f"model loads; the local run gets the loaded model.", ""]
    rows = [["local", "-", header["threads"], f"{local:.1f}", f"{sizes.ray_texts / local:.2f}", "1.00x", "-"]]
    rows += [["ray", n, f"{ray[f'plan{n}'].get('torch_threads', '?')} per actor", f"{ray[n]:.1f}",
              f"{sizes.ray_texts / ray[n]:.2f}", f"{ray[n] / local:.2f}x",
              " / ".join(str(t) for t in ray[f"plan{n}"].get("texts_per_actor", {}).values())] for n in (1, 2)]
    out += [common.table(["engine", "actors", "torch threads", "seconds", "texts/s", "time vs local",
                          "texts per actor"], rows), ""]
    best = min(ray[1], ray[2])
    out += [f"- target: Ray within {RAY_TARGET}x of the local engine's time: **{met(best <= RAY_TARGET * local)}** "
            f"(best {best / local:.2f}x; 2 actors took {ray[2] / ray[1]:.2f} of 1 actor's time)", ""]
    return out


def markdown(sizes: Sizes, args, header: dict, speed: list[dict], ray: dict | None, rss: list[dict], peer_why: str,
             quick: bool) -> str:
    out = [f"### Corpus mode (benchmarks/corpus.py{' --quick' if quick else ''})", ""]
    out += [f"- date: {header['date']}; run took {header['seconds']:.0f} s (estimated {header['estimate']:.0f} s)",
            f"- machine: {os.cpu_count()} CPU cores (nproc), {common.cpu_model()}, no accelerator used; "
            f"torch threads {header['threads']} (local engine and loops); a Ray actor runs one per CPU it holds",
            f"- load average (1, 5, 15 min): {header['load_start']} at the start, {header['load_end']} at the end",
            f"- software: {header['versions']}",
            f"- model: {header['model']}; target: the predicted class's probability; batch size {sizes.batch_size}",
            ""]
    if not speed:  # --only-ray
        return "\n".join(out + (ray_section(sizes, header, ray) if ray is not None else []))
    out += [f"**Throughput** on {sizes.texts} texts of 5-{sizes.max_words} words (the built-in sample's sentences, "
            f"seeded). The corpus engine ran all {sizes.texts} after an untimed job of one other text; the per-text "
            f"loops ran the first {sizes.loop_texts}, text by text in turn, after one untimed warm-up call each on "
            f"that text. The local engine and the `analyze` loop get "
            f"the loaded model; neither counts its load. This process kept {header['cores']:.2f} cores busy on average "
            f"meanwhile (about {header['threads']} on a quiet machine; less: other work took the CPUs).", ""]
    rows = []
    for r in speed:
        peer = f"{r['peer']:.2f}" if "peer" in r else ("not offered" if r["method"] != "integrated_gradients"
                                                       else peer_why or "n/a")
        vs_peer = f"{r['corpus'] / r['peer']:.1f}x" if "peer" in r else "-"
        rows.append([METHOD_NAMES[r["method"]], f"{r['loop']:.2f}", peer, f"{r['corpus']:.2f}",
                     f"**{r['corpus'] / r['loop']:.1f}x**", vs_peer])
    out += [common.table(["method", "per-text `analyze` loop (texts/s)", f"{PEER} loop (texts/s)",
                          "local corpus engine (texts/s)", "speed-up vs loop", f"speed-up vs {PEER}"], rows), ""]
    for r in speed:
        ratio = r["corpus"] / r["loop"]
        out.append(f"- target: {METHOD_NAMES[r['method']]} at least {SPEED_UP_TARGET:.0f}x the per-text loop: "
                   f"**{met(ratio >= SPEED_UP_TARGET)}** ({ratio:.1f}x)")
    out.append("")
    if ray is not None:
        out += ray_section(sizes, header, ray)
    if rss:
        out += ["**Memory**: peak RSS of a gradient x input run on short texts (5-20 words), each size in a fresh "
                "process (`ru_maxrss`), the model loaded first.", ""]
        rows = [[f"{r['texts']:,}", f"{r['seconds']:.1f}", f"{r['texts'] / r['seconds']:.1f}",
                 f"{r['after_load_mb']:.0f}", f"{r['peak_mb']:.0f}"] for r in rss]
        headers = ["texts", "seconds", "texts/s", "peak RSS once the model is loaded (MB)", "peak RSS (MB)"]
        out += [common.table(headers, rows), ""]
        if len(rss) >= 2:
            ratio = rss[-1]["peak_mb"] / rss[0]["peak_mb"]
            out += [f"- target: peak RSS at {rss[-1]['texts']:,} texts within {RSS_TARGET - 1:.0%} of "
                    f"{rss[0]['texts']:,}: **{met(ratio <= RSS_TARGET)}** (ratio {ratio:.3f})", ""]
    return "\n".join(out)


def parse(argv: list[str] | None) -> argparse.Namespace:
    d = Sizes()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run with tiny sizes (figures mean nothing)")
    p.add_argument("--texts", type=int, help=f"texts for the corpus engine (default {d.texts})")
    p.add_argument("--loop-texts", type=int, help=f"texts for the per-text loops (default {d.loop_texts})")
    p.add_argument("--ray-texts", type=int, help=f"texts for the Ray comparison, the first of the throughput set "
                   f"(default {d.ray_texts}; 500: the whole set of issue 19's section 6)")
    p.add_argument("--ray-method", choices=METHODS, help=f"method of the Ray comparison (default {d.ray_method})")
    p.add_argument("--rss", help="comma-separated corpus sizes for peak RSS (default 1000,10000)")
    p.add_argument("--batch-size", type=int, help=f"corpus batch size (default {d.batch_size})")
    p.add_argument("--max-words", type=int, help=f"longest throughput text in words (default {d.max_words})")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray comparison")
    p.add_argument("--only-ray", action="store_true", help="only the Ray comparison (no throughput, no memory)")
    p.add_argument("--no-peer", action="store_true", help=f"skip {PEER}")
    p.add_argument("--model", help="a saved classification model folder instead of MiniLM with a random head")
    p.add_argument("--out", type=Path, help="also write the Markdown block to this file")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to SECONDS for a quiet machine (no other benchmark, load average under 0.5)")
    p.add_argument("--rss-child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def sizes_of(args: argparse.Namespace) -> Sizes:
    sizes = QUICK if args.quick else Sizes()
    given = {"texts": args.texts, "loop_texts": args.loop_texts, "ray_texts": args.ray_texts,
             "ray_method": args.ray_method, "batch_size": args.batch_size, "max_words": args.max_words,
             "rss": tuple(int(x) for x in args.rss.split(",") if x.strip()) if args.rss is not None else None}
    sizes = replace(sizes, **{k: v for k, v in given.items() if v is not None})
    if min(sizes.texts, sizes.loop_texts, sizes.ray_texts, sizes.batch_size, *sizes.rss) < 1 or sizes.max_words < 5:
        raise SystemExit("Sizes must be at least 1, and --max-words at least 5.")
    return replace(sizes, loop_texts=min(sizes.loop_texts, sizes.texts))


def main(argv: list[str] | None = None) -> str:
    args = parse(argv)
    if args.rss_child:
        rss_child(args.model, args.rss_child, args.batch_size or Sizes().batch_size)
        return ""
    from explain.models import configure_threads, load_model

    sizes = sizes_of(args)
    peer, peer_why = (None, "skipped (--no-peer)") if args.no_peer else import_peer()
    ray_ok = not args.no_ray
    estimate_s = estimate(sizes, peer is not None, ray_ok, bool(sizes.rss))
    log(f"estimated run time on a quiet 2-core machine: {estimate_s / 60:.1f} min ({sizes})")
    if args.wait_idle > 0:
        log(f"load average (1 min) after waiting for a quiet machine: {common.wait_for_idle(args.wait_idle):.2f}")
    wall = time.perf_counter()
    header = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "load_start": loadavg(), "estimate": estimate_s}
    header["threads"] = configure_threads()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.model:
            model_dir = str(Path(args.model).resolve())
            header["model"] = f"`{args.model}`"
        else:
            model_dir = str(save_classifier(folder / "model"))
            header["model"] = "all-MiniLM-L6-v2 (embedded) with a seeded random 2-label head"
        loaded = load_model(model_dir)
        every = make_texts(max(sizes.texts, sizes.ray_texts), max_words=sizes.max_words)  # seeded: prefixes agree
        texts = every[: sizes.texts]
        source = write_csv(folder / "texts.csv", texts)
        start, cpu = time.perf_counter(), time.process_time()
        speed = [] if args.only_ray else throughput(sizes, model_dir, loaded, source, texts, peer)
        header["cores"] = (time.process_time() - cpu) / (time.perf_counter() - start)
        ray = None
        if ray_ok:
            ray_source = write_csv(folder / "ray.csv", every[: sizes.ray_texts])
            ray = ray_runs(sizes, model_dir, loaded, ray_source)
        rss = rss_runs(sizes, model_dir, folder) if sizes.rss and not args.only_ray else []
    header.update(seconds=time.perf_counter() - wall, load_end=loadavg(),
                  versions=versions(ray["version"] if ray else "", peer))
    text = markdown(sizes, args, header, speed, ray, rss, peer_why, args.quick)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
