"""The answer target of extractive question answering: the start, the end or the span score of the answer.

The question is the first text and the context the second, as Hugging Face's
question-answering pipeline encodes them; the answer is searched in the context only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explain.errors import InputError
from explain.models import LoadedModel
from explain.records import Prediction, Span, TargetSpec
from explain.targets.base import HeadReadout, Target, TargetKind, TextLayout, register
from explain.targets.fields import ANSWER_PARTS

# The longest answer in tokens: transformers' extractive default (`max_answer_len=15` in its question-answering
# pipelines' span selection), so the answer explained is the one the pipeline would give.
MAX_ANSWER_TOKENS = 15
CONTEXT_SEGMENT = 1


def best_span(start_logits: np.ndarray, end_logits: np.ndarray, allowed: np.ndarray,
              max_tokens: int = MAX_ANSWER_TOKENS) -> tuple[int, int, float]:
    """(first token, last token, start + end logit) of the best answer inside `allowed` tokens."""
    start = np.where(allowed, start_logits, -np.inf)
    end = np.where(allowed, end_logits, -np.inf)
    pair = start[:, None] + end[None, :]
    n = len(start)
    i, j = np.indices((n, n))
    pair = np.where((j >= i) & (j - i < max_tokens), pair, -np.inf)
    first, last = np.unravel_index(int(np.argmax(pair)), pair.shape)
    return int(first), int(last), float(pair[first, last])


@dataclass(frozen=True, eq=False)
class AnswerTarget(Target):
    """One logit of the answer: the start logit at a token, the end logit at a token, or the answer span's score."""

    part: str = "start"
    answer: Span | None = None
    context_tokens: np.ndarray | None = None  # bool [tokens]

    def scores_from_output(self, out: Any, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.part == "span":
            assert self.answer is not None
            score = out.start_logits[:, self.answer.first_token] + out.end_logits[:, self.answer.last_token]
            return score.float().unsqueeze(-1)
        return (out.start_logits if self.part == "start" else out.end_logits).float()

    def top_index(self, scores: torch.Tensor) -> int:
        if self.answer is None:
            return int(scores.argmax())
        return self.answer.first_token if self.part == "start" else self.answer.last_token if self.part == "end" else 0

    def readout_weights(self, attention_mask: torch.Tensor) -> np.ndarray:
        weights = np.zeros(attention_mask.shape[-1])
        assert self.answer is not None
        if self.part == "span":
            np.add.at(weights, [self.answer.first_token, self.answer.last_token], 0.5)  # a one-token answer gets 1
        else:
            weights[self.index] = 1.0
        return weights

    def readout(self) -> HeadReadout:
        if self.part == "span":
            assert self.answer is not None
            return HeadReadout("question_answering", ((self.answer.first_token, 0), (self.answer.last_token, 1)))
        return HeadReadout("question_answering", ((self.index, 0 if self.part == "start" else 1),))

    @property
    def description(self) -> str:
        if self.part == "span":
            return "answer span score (start logit + end logit)"
        return f"{self.part} logit at token {self.index} «{self.labels[self.index]}»"

    def prediction(self, scores: np.ndarray) -> Prediction:
        spans = () if self.answer is None else (self.answer,)
        return Prediction(labels=list(self.labels), scores=scores.astype(np.float32), explained_index=self.index,
                          description=self.description, score_name=self.score_name, spans=spans)


def resolve_answer(loaded: LoadedModel, spec: TargetSpec, layout: TextLayout) -> Target:
    part = spec.part or "start"
    if part not in ANSWER_PARTS:
        raise InputError(f"Unknown answer part '{part}'; choose one of {', '.join(ANSWER_PARTS)}.")
    if part == "span" and spec.token >= 0:
        raise InputError("The span score reads the answer's own tokens; leave out the token or explain the start "
                         "or the end.")
    context = layout.segments == CONTEXT_SEGMENT
    if not context.any():
        raise InputError("Question answering needs a question and a context; type the question in its box "
                         "(--question).")
    ids = layout.input_ids
    out = layout.forward()
    first, last, score = best_span(out.start_logits[0].float().cpu().numpy(), out.end_logits[0].float().cpu().numpy(),
                                   context)
    answer = Span(label="answer", first_token=first, last_token=last, score=score)
    tokens = tuple(loaded.tokenizer.convert_ids_to_tokens(ids[0].tolist()))
    n = len(tokens)
    index = -1
    if part == "span":
        labels: tuple[str, ...] = ("answer span",)
        index = 0
    else:
        labels = tokens
        if spec.token >= 0:
            if not spec.token < n:
                raise InputError(f"There is no token {spec.token}; the text has tokens 0 to {n - 1}.")
            index = spec.token
    return AnswerTarget(spec, loaded, labels, index=index, score_name="span score" if part == "span" else f"{part} logit",
                        part=part, answer=answer, context_tokens=context)


ANSWER = register(TargetKind(
    name="answer", title="answer (question answering)",
    summary="The start logit, end logit or span score of the answer a question-answering head extracts.",
    heads=("question_answering",), resolve=resolve_answer, default_for=("question_answering",), reads=("part", "token"), needs="question",
    position_bound=True, spans="answer",
))
