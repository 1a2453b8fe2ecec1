"""What a corpus job asks for (the file, columns, model, target, methods, options) and how far a run is."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explain.corpus.readers import CorpusColumns, CorpusRow, ReaderLimits
from explain.errors import InputError
from explain.methods import get_method
from explain.methods.base import MethodSettings, method_settings
from explain.records import AnalysisRequest, TargetSpec

DEFAULT_BATCH_SIZE = 64
ENGINES = ("local", "ray")

@dataclass(frozen=True)
class CorpusJob:
    """What a corpus run computes: the file and its columns, the model, target, methods and options.

    source: a file path, or "sample" for the built-in labelled sample. method_settings: ("method.setting", value)
    pairs as in AnalysisRequest; integrated gradients reads n_steps and integration from here. heads: the heads
    table (`explain.corpus.heads`); head_ablation adds each head's ablation effect to it.
    """

    source: str
    columns: CorpusColumns = field(default_factory=CorpusColumns)
    methods: tuple[str, ...] = ("gradient_x_input",)
    model: str = "minilm"
    target: TargetSpec | None = None
    method_settings: tuple[tuple[str, str], ...] = ()
    n_steps: int = 50
    integration: str = "adaptive_simpson"
    baseline: str = "pad"
    max_tokens: int = 128
    faithfulness: bool = False
    heads: bool = False  # per text x layer x head: attention statistics and gradient importance (explain.corpus.heads)
    head_ablation: bool = False  # with heads: also each head's ablation effect (layers x heads passes per text)
    naopc: bool = True  # with faithfulness: NAOPC (exact up to 12 words, a beam above; `explain.evaluation.naopc`)
    batch_size: int = DEFAULT_BATCH_SIZE
    file_format: str | None = None
    limits: ReaderLimits = field(default_factory=ReaderLimits)

    def __post_init__(self) -> None:
        if not self.methods:
            raise InputError("Choose at least one attribution method.")
        for name in self.methods:
            get_method(name)
        if len(set(self.methods)) != len(self.methods):
            raise InputError("Each method may be named only once.")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 100_000:
            raise InputError("The batch size must be a whole number from 1 to 100,000.")
        if self.head_ablation and not self.heads:
            raise InputError("The heads' ablation effect needs the heads option on.")

    def request(self, row: CorpusRow | None = None) -> AnalysisRequest:
        """The analysis request of one row (or of the job's settings alone, with a stand-in text)."""
        return AnalysisRequest(
            text=row.text if row else "x", pair=(row.pair or "") if row else "",
            question=(row.question or "") if row else "", model=self.model, target=self.target,
            n_steps=self.n_steps, baseline=self.baseline, max_tokens=self.max_tokens,
            method=self.methods[0], method_settings=self.method_settings, integration=self.integration,
            tolerance=None)

    def settings(self) -> dict[str, MethodSettings]:
        request = self.request()
        return {name: method_settings(request, name) for name in self.methods}

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    def fingerprint(self) -> str:
        """What a resumed run must match: everything that changes the tables (the source by path, size, mtime)."""
        data = self.as_dict()
        for name in ("heads", "head_ablation"):  # off: the fingerprint of runs written before these options
            if not data[name]:
                del data[name]
        if not self.faithfulness:
            data.pop("naopc")
        source = Path(self.source)
        if source.is_file():
            stat = source.stat()
            data["source_file"] = [str(source.resolve()), stat.st_size, int(stat.st_mtime)]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CorpusProgress:
    """Where a run stands: texts done (resumed ones included) of the total, failures, and the time left."""

    done: int
    total: int
    failed: int
    batches_done: int
    batches: int
    elapsed: float
    seconds_left: float  # nan until a batch has been timed

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


