from __future__ import annotations

import os

import pytest
from hypothesis import settings

from testkit.tiny_models import HEADS, TASK_HEADS, save_tiny_model, save_tiny_roberta

# Property tests draw the same examples on every run (CI stays repeatable); HYPOTHESIS_PROFILE=explore draws anew.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session", autouse=True)
def session_store(tmp_path_factory):
    """Saved analyses go to a SQLite file of this test process, never ./data nor a developer's EXPLAIN_STORE_PATH:
    under `pytest -n 2` each worker has its own. Tests that check a store set EXPLAIN_STORE_PATH over this one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPLAIN_STORE_PATH", str(tmp_path_factory.mktemp("session_store") / "analyses.sqlite3"))
        yield


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, str]:
    """Folders of tiny random models: one per head, plus an encoder with a different vocabulary."""
    root = tmp_path_factory.mktemp("tiny")
    dirs = {head: str(save_tiny_model(root / head, head)) for head in HEADS}
    dirs["encoder_alt"] = str(save_tiny_model(root / "encoder_alt", "encoder", seed=1, alternative_vocab=True,
                                              layers=3, heads=2))
    return dirs


@pytest.fixture(scope="session")
def tiny_models(tiny_dirs):
    from explain import load_model

    return {head: load_model(path) for head, path in tiny_dirs.items()}


@pytest.fixture(scope="session")
def task_dirs(tmp_path_factory) -> dict[str, str]:
    """Folders of tiny random BERTs with the heads of other tasks: NER, QA, next sentence, pre-training, multi-label."""
    root = tmp_path_factory.mktemp("tasks")
    return {head: str(save_tiny_model(root / head, head)) for head in TASK_HEADS}


@pytest.fixture(scope="session")
def task_models(task_dirs):
    from explain import load_model

    return {head: load_model(path) for head, path in task_dirs.items()}


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory):
    """Tiny random RoBERTa models, one per head (position ids that skip <pad>, byte-level BPE)."""
    from explain import load_model

    root = tmp_path_factory.mktemp("tiny_roberta")
    return {head: load_model(str(save_tiny_roberta(root / head, head))) for head in HEADS}


@pytest.fixture(scope="session")
def minilm():
    from explain import load_model

    return load_model("minilm")
