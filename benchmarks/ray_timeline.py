"""Where a Ray corpus job's fixed time goes: one small job's timeline, wall and CPU seconds per phase.

The model and texts are benchmarks/corpus.py's (MiniLM with a seeded random head, texts of 5-60 words), gradient
x input by default so that the model's own time is small. Marks: in the driver (import ray, ray.init, run_ray's
start and end, first and last batch written, shutdown), in each actor (its process start, constructor entered,
imports done, model loaded, each call's start and end; a subclass of the engine's mapper writes them to a file),
and Ray Data's own stats (`Dataset.stats()`). CPU seconds: this process and every process under it (Ray's
servers and workers), sampled from /proc twice a second, so an actor that exits still counts up to its last sample.

Run: .venv/bin/python benchmarks/ray_timeline.py [--texts 20] [--method gradient_x_input] [--actors 2] [--cold]
(--cold: the job starts and stops its own local Ray, as the CLI does; otherwise Ray is started first, as
benchmarks/corpus.py does, and the start is shown apart.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
MARKS_ENV = "EXPLAIN_RAY_TIMELINE_MARKS"


def process_name(pid: int) -> str:
    """A short name for a process: Ray's process title, or its program and first argument."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return "?"
    if not args:
        return "?"
    if len(args) == 1 or args[0].startswith("ray::"):
        return args[0][:60]
    return " ".join(Path(a).name for a in args[:2])[:60]


def boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as f:
        return next(float(line.split()[1]) for line in f if line.startswith("btime"))


def proc_stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, CPU seconds, start time since boot in seconds) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, int(fields[19]) / TICK


class TreeCpu:
    """CPU seconds of this process and its descendants, sampled in a thread (the last sample of a gone process
    still counts)."""

    def __init__(self, every: float = 0.5) -> None:
        self.seen: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.every = every
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        stats = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                s = proc_stat(int(name))
                if s is not None:
                    stats[int(name)] = s
        mine = {os.getpid()}
        grew = True
        while grew:
            grew = False
            for pid, (ppid, _, _) in stats.items():
                if ppid in mine and pid not in mine:
                    mine.add(pid)
                    grew = True
        with self.lock:
            for pid in mine:
                if pid in stats:
                    self.seen[pid] = max(self.seen.get(pid, 0.0), stats[pid][1])
                    self.names[pid] = process_name(pid)

    def loop(self) -> None:
        while not self.stop.wait(self.every):
            self.sample()

    def snapshot(self) -> dict[int, float]:
        self.sample()
        with self.lock:
            return dict(self.seen)

    def total(self) -> float:
        self.sample()
        with self.lock:
            return sum(self.seen.values())

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def actor_class():
    """The engine's mapper, writing timestamped marks (wall, process CPU) to the file named by MARKS_ENV."""
    from explain.corpus.engine_ray import CorpusMapper

    class TimedMapper(CorpusMapper):
        def __init__(self, *args, **kwargs) -> None:
            self.marks_file = os.environ[MARKS_ENV]
            s = proc_stat(os.getpid())
            self.mark("process started", boot_time() + s[2] if s else time.time())
            self.mark("constructor entered")
            super().__init__(*args, **kwargs)
            self.mark("constructed (imports done, load started)")
            self.loading.add_done_callback(lambda _: self.mark("model loaded"))
            self.calls = 0

        def mark(self, what: str, at: float | None = None) -> None:
            with open(self.marks_file, "a", encoding="utf-8") as f:
                f.write(json.dumps({"pid": os.getpid(), "what": what, "t": at or time.time(),
                                    "cpu": time.process_time()}) + "\n")

        def __call__(self, batch):
            self.calls += 1
            self.mark(f"call {self.calls} start ({batch.num_rows} rows)")
            out = super().__call__(batch)
            self.mark(f"call {self.calls} end")
            return out

    return TimedMapper


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--texts", type=int, default=20)
    p.add_argument("--method", default="gradient_x_input", choices=corpus.METHODS)
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-runtime-env", action="store_true",
                   help="start Ray with PYTHONPATH in the environment instead of a runtime_env")
    p.add_argument("--cold", action="store_true", help="the job starts and stops its own Ray")
    args = p.parse_args(argv)
    cpu = TreeCpu()
    marks: list[tuple[str, float, float]] = []
    t0 = time.time()

    def mark(what: str) -> None:
        marks.append((what, time.time(), cpu.total()))

    mark("start")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir = str(corpus.save_classifier(folder / "model"))
        source = corpus.write_csv(folder / "texts.csv", corpus.make_texts(args.texts))
        os.environ[MARKS_ENV] = str(folder / "marks.jsonl")
        mark("model saved, texts written (setup, not Ray)")
        import ray

        import explain.corpus.engine_ray as engine
        from explain.corpus import run_job

        mark("import ray and the engine")
        engine.CorpusMapper = actor_class()  # type: ignore[misc]
        captured = []
        original = ray.data.Dataset.map_batches

        def capture(self, *a, **k):
            out = original(self, *a, **k)
            captured.append(out)
            return out

        ray.data.Dataset.map_batches = capture  # type: ignore[method-assign]
        if not args.cold:
            runtime_env = engine.worker_runtime_env(local=True) if hasattr(engine, "worker_runtime_env") else {
                "env_vars": {"PYTHONPATH": str(corpus.common.ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}}
            if args.no_runtime_env and runtime_env is not None:
                os.environ.update(runtime_env["env_vars"])
                runtime_env = None
            ray.init(address="local", num_cpus=corpus.RAY_CPUS, object_store_memory=corpus.RAY_OBJECT_STORE_BYTES,
                     include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
            mark("ray.init (by the caller)")
        job = corpus.job_for(source, model_dir, args.method, args.batch_size)
        seen = []

        def progress(pr) -> None:
            if pr.done and not seen:
                mark("first batch written")
            seen.append(pr)

        mark("job start")
        before = cpu.snapshot()
        outcome = run_job(job, folder / "run", engine="ray", actors=args.actors, progress=progress)
        mark("last batch written" + (", ray shut down" if args.cold else ""))
        after = cpu.snapshot()
        stats = captured[-1].stats() if captured else "(no dataset)"
        if not args.cold:
            ray.shutdown()
            mark("ray.shutdown")
        actor_marks = [json.loads(line) for line in Path(os.environ[MARKS_ENV]).read_text().splitlines()]
    cpu.close()
    print(f"job: {args.texts} texts, {args.method}, {args.actors} actors, {'cold' if args.cold else 'Ray started first'}"
          f"; {outcome.texts} texts done; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'t (s)':>7} {'+wall':>6} {'tree CPU':>8} {'+CPU':>6}  driver mark")
    prev_t, prev_c = t0, 0.0
    for what, t, c in marks:
        print(f"{t - t0:7.2f} {t - prev_t:6.2f} {c:8.2f} {c - prev_c:6.2f}  {what}")
        prev_t, prev_c = t, c
    print(f"\n{'pid':>8} {'CPU':>6}  process: CPU seconds during the job")
    for pid in sorted(after, key=lambda q: before.get(q, 0.0) - after[q]):
        if after[pid] - before.get(pid, 0.0) >= 0.05:
            print(f"{pid:>8} {after[pid] - before.get(pid, 0.0):6.2f}  {cpu.names.get(pid, '?')}")
    print(f"\n{'t (s)':>7} {'pid':>8} {'CPU':>6}  actor mark")
    for m in sorted(actor_marks, key=lambda m: m["t"]):
        print(f"{m['t'] - t0:7.2f} {m['pid']:>8} {m['cpu']:6.2f}  {m['what']}")
    print("\nRay Data stats:\n" + str(stats))


if __name__ == "__main__":
    main()
