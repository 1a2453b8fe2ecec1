"""Every task head a BERT reader meets: token classification, question answering, next sentence, pre-training,
multi-label classification.

The explained score is checked against a forward pass written here with transformers' own tokenizer call
(`tokenizer(question, context)`, `tokenizer(text, pair)`) and the model class loaded directly; truncation of
pairs against the tokenizer's own truncation; entity merging and the best answer span against rules and brute
force written here.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from explain import Analysis, AnalysisRequest, TargetSpec, analyze
from explain.errors import InputError, SchemaError
from explain.methods import METHODS, word_scorer
from explain.pipeline import attribution_context, explain_entities
from explain.targets import TARGETS, best_span, merge_entities
from explain.tokenization import encode_pair_truncated
from testkit.tiny_models import HEAD_CLASSES, save_tiny_roberta
from tests.unit.test_decompx import explained_logit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schema_v1"

# ---------------------------------------------------------------- pairs cut as the tokenizer cuts them

FIRST = "the film was good but too long and the service was terrible , not great at all ."
SECOND = "i loved the food , it was very fast and this is a good movie ."


@pytest.fixture(scope="module")
def pair_tokenizer(task_dirs):
    return AutoTokenizer.from_pretrained(task_dirs["next_sentence"])


@pytest.fixture(scope="module")
def roberta_tokenizer(tmp_path_factory):
    """RoBERTa joins a pair with two separators (<s> a </s></s> b </s>) and has no token types."""
    return AutoTokenizer.from_pretrained(save_tiny_roberta(tmp_path_factory.mktemp("roberta_pair"), "encoder"))


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("truncation", ["longest_first", "only_second"])
def test_pair_truncation_matches_the_tokenizers_own(request, family, truncation):
    pair_tokenizer = request.getfixturevalue("pair_tokenizer" if family == "bert" else "roberta_tokenizer")
    first_words, second_words = FIRST.split(), SECOND.split()
    question_lengths = range(1, 6) if truncation == "only_second" else range(1, len(first_words) + 1)
    checked = refused = 0
    for n_first, n_second in itertools.product(question_lengths, range(1, len(second_words) + 1)):
        first, second = " ".join(first_words[:n_first]), " ".join(second_words[:n_second])
        for max_tokens in range(4, 40):
            try:
                expected = pair_tokenizer(first, second, truncation=truncation, max_length=max_tokens)
            except Exception:  # only_second cannot cut the context enough: the question alone is too long
                if truncation != "only_second":
                    raise
                expected = None
            if truncation == "only_second" and (expected is None or 1 not in expected.sequence_ids()):
                with pytest.raises(InputError, match="no room for the context"):
                    encode_pair_truncated(pair_tokenizer, first, second, max_tokens, truncation=truncation)
                refused += 1
                continue
            ours = encode_pair_truncated(pair_tokenizer, first, second, max_tokens, truncation=truncation)
            assert ours.encoding.ids == expected["input_ids"], (first, second, max_tokens)
            if "token_type_ids" in expected:
                assert ours.encoding.type_ids == expected["token_type_ids"]
            assert ours.n_tokens_full == len(pair_tokenizer(first, second)["input_ids"])
            checked += 1
    assert checked > 300 and (refused > 0) == (truncation == "only_second")
    assert checked > 500


# ---------------------------------------------------------------- the explained score is the model's own output

TEXT = "the film was good but too long ."
PAIR = "it was very slow and bad ."
QUESTION = "what was too long ?"


@pytest.fixture(scope="module")
def plain_models(task_dirs):
    """Each task model and tokenizer loaded straight from transformers, as a user would (no explain code)."""
    out = {}
    for head, folder in task_dirs.items():
        model = HEAD_CLASSES[head].from_pretrained(folder, attn_implementation="eager").eval()
        out[head] = (model, AutoTokenizer.from_pretrained(folder))
    return out


def plain_output(plain_models, head: str, *texts: str):
    model, tokenizer = plain_models[head]
    encoding = tokenizer(*texts, return_tensors="pt")
    with torch.no_grad():
        return model(**encoding), encoding


def brute_force_span(start: np.ndarray, end: np.ndarray, allowed: np.ndarray, max_tokens: int) -> tuple[int, int]:
    best, where = -np.inf, (-1, -1)
    for i in range(len(start)):
        for j in range(i, min(len(start), i + max_tokens)):
            if allowed[i] and allowed[j] and start[i] + end[j] > best:
                best, where = start[i] + end[j], (i, j)
    return where


def explained(analysis) -> tuple[float, float]:
    p = analysis.prediction
    return analysis.attribution.score_input, float(p.scores[p.explained_index])


def first_entity_token(logits: torch.Tensor, labels: dict[int, str], special: list[int]) -> int:
    """Where the first predicted entity starts: the first ordinary token whose top label is not "O"."""
    top = logits.argmax(-1).tolist()
    return next(i for i, k in enumerate(top) if not special[i] and labels[k] != "O")


def test_token_class_first_entity_is_the_models_own_probability(task_models, plain_models):
    out, enc = plain_output(plain_models, "token_classification", TEXT)
    model = plain_models["token_classification"][0]
    special = plain_models["token_classification"][1].get_special_tokens_mask(
        enc["input_ids"][0].tolist(), already_has_special_tokens=True)
    token = first_entity_token(out.logits[0], model.config.id2label, special)
    probabilities = torch.softmax(out.logits[0, token], -1)
    label = int(probabilities.argmax())
    result = analyze(AnalysisRequest(TEXT, n_steps=8), task_models["token_classification"])
    assert result.prediction.labels[result.prediction.explained_index] == model.config.id2label[label]
    assert result.prediction.spans[0].first_token == token
    assert explained(result) == pytest.approx((float(probabilities[label]),) * 2, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("logit", [False, True])
def test_token_class_chosen_token_and_label(task_models, plain_models, logit):
    out, _ = plain_output(plain_models, "token_classification", TEXT)
    spec = TargetSpec("token_class", token=4, label="I-LOC", logit=logit)
    result = analyze(AnalysisRequest(TEXT, target=spec, n_steps=8), task_models["token_classification"])
    logits = out.logits[0, 4]
    expected = float(logits[4]) if logit else float(torch.softmax(logits, -1)[4])
    assert explained(result) == pytest.approx((expected, expected), rel=1e-5, abs=1e-7)
    assert result.prediction.score_name == ("logit" if logit else "probability")


@pytest.mark.parametrize("part", ["start", "end", "span"])
def test_answer_scores_are_the_models_own_logits(task_models, plain_models, part):
    out, enc = plain_output(plain_models, "question_answering", QUESTION, TEXT)
    start, end = out.start_logits[0].numpy(), out.end_logits[0].numpy()
    context = np.array([s == 1 for s in enc.sequence_ids(0)])
    first, last = brute_force_span(start, end, context, 30)
    expected = {"start": start[first], "end": end[last], "span": start[first] + end[last]}[part]
    result = analyze(AnalysisRequest(TEXT, question=QUESTION, target=TargetSpec("answer", part=part), n_steps=8),
                     task_models["question_answering"])
    assert explained(result) == pytest.approx((float(expected),) * 2, rel=1e-5, abs=1e-6)
    (answer,) = result.prediction.spans
    assert (answer.first_token, answer.last_token) == (first, last)
    assert answer.score == pytest.approx(float(start[first] + end[last]), rel=1e-5, abs=1e-6)
    assert result.tokens.tokens == plain_models["question_answering"][1].convert_ids_to_tokens(enc["input_ids"][0])


def test_answer_start_at_a_chosen_token(task_models, plain_models):
    out, _ = plain_output(plain_models, "question_answering", QUESTION, TEXT)
    result = analyze(AnalysisRequest(TEXT, question=QUESTION, target=TargetSpec("answer", part="end", token=9),
                                     n_steps=8), task_models["question_answering"])
    assert explained(result) == pytest.approx((float(out.end_logits[0, 9]),) * 2, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("head", ["next_sentence", "pretraining"])
@pytest.mark.parametrize("logit", [False, True])
def test_next_sentence_is_the_models_own_output(task_models, plain_models, head, logit):
    out, enc = plain_output(plain_models, head, TEXT, PAIR)
    logits = (out.seq_relationship_logits if head == "pretraining" else out.logits)[0]
    scores = logits if logit else torch.softmax(logits, -1)
    result = analyze(AnalysisRequest(TEXT, pair=PAIR, target=TargetSpec("next_sentence", logit=logit), n_steps=8),
                     task_models[head])
    top = int(scores.argmax())
    assert result.prediction.explained_index == top
    assert explained(result) == pytest.approx((float(scores[top]),) * 2, rel=1e-5, abs=1e-7)
    np.testing.assert_array_equal(result.tokens.segments, [-1 if s is None else s for s in enc.sequence_ids(0)])


def test_pretraining_masked_token_is_the_models_own_probability(task_models, plain_models):
    text = "the film was [MASK] but too long ."
    out, enc = plain_output(plain_models, "pretraining", text)
    position = enc["input_ids"][0].tolist().index(plain_models["pretraining"][1].mask_token_id)
    probabilities = torch.softmax(out.prediction_logits[0, position], -1)
    result = analyze(AnalysisRequest(text, n_steps=8), task_models["pretraining"])
    assert explained(result) == pytest.approx((float(probabilities.max()),) * 2, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("logit", [False, True])
def test_multi_label_is_one_sigmoid_per_label(task_models, plain_models, logit):
    out, _ = plain_output(plain_models, "multi_label", TEXT)
    scores = out.logits[0] if logit else torch.sigmoid(out.logits[0])
    result = analyze(AnalysisRequest(TEXT, target=TargetSpec("class", label="neutral", logit=logit), n_steps=8),
                     task_models["multi_label"])
    assert explained(result) == pytest.approx((float(scores[1]),) * 2, rel=1e-5, abs=1e-7)
    np.testing.assert_allclose(result.prediction.scores, scores.numpy(), rtol=1e-5, atol=1e-7)
    assert not np.isclose(result.prediction.scores.sum(), 1.0)  # not a softmax


# ---------------------------------------------------------------- every method on every task

FAST = {
    "integrated_gradients": {"n_steps": 16},
    "smoothgrad": {"nt_samples": 6},
    "lime": {"n_samples": 64},
    "kernel_shap": {"n_samples": 64},
}
TASKS = {  # name: (head, request)
    "token_class": ("token_classification", AnalysisRequest(TEXT)),
    "token_class_logit": ("token_classification", AnalysisRequest(TEXT, target=TargetSpec("token_class", token=3,
                                                                                          logit=True))),
    "answer_start": ("question_answering", AnalysisRequest(TEXT, question=QUESTION)),
    "answer_span": ("question_answering", AnalysisRequest(TEXT, question=QUESTION, target=TargetSpec("answer",
                                                                                                      part="span"))),
    "next_sentence": ("next_sentence", AnalysisRequest(TEXT, pair=PAIR)),
    "pretraining_next_sentence": ("pretraining", AnalysisRequest(TEXT, pair=PAIR,
                                                                 target=TargetSpec("next_sentence"))),
    "pretraining_masked": ("pretraining", AnalysisRequest("the film was [MASK] but too long .")),
    "multi_label": ("multi_label", AnalysisRequest(TEXT)),
    "pair_similarity": ("next_sentence", AnalysisRequest(TEXT, pair=PAIR, target=TargetSpec(
        "similarity", reference="the food was bad"))),
}


@pytest.fixture(scope="module")
def task_contexts(task_models):
    return {name: attribution_context(request, task_models[head]) for name, (head, request) in TASKS.items()}


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_that_supports_a_task_gives_finite_scores(task_contexts, name, task):
    context = task_contexts[task]
    method = METHODS[name]
    if not method.supports(context.target.spec.kind):
        pytest.skip(f"{name} does not support {context.target.spec.kind}")
    result = method.attribute(context, method.settings_type.parse(FAST.get(name, {})))
    special = context.special[0].numpy()
    assert result.scores.shape == (context.n_tokens,) and result.word_scores.shape == (context.n_words,)
    assert np.isfinite(result.scores).all() and np.isfinite(result.word_scores).all()
    assert (result.scores[special] == 0).all() != method.splits_logit  # a split of the logit keeps their shares
    with torch.no_grad():
        scores = context.forward(context.embeddings())[0]
    shown = explained_logit(context) if method.splits_logit else float(scores[context.target.index])
    assert result.score_input == pytest.approx(shown, rel=1e-5, abs=1e-6)
    if name == "integrated_gradients":
        assert abs(result.delta) < 2e-2 * max(1.0, abs(result.score_input - result.score_baseline))


@pytest.mark.parametrize("task", list(TASKS))
def test_integrated_gradients_is_complete_on_every_task(task_models, task):
    head, request = TASKS[task]
    result = analyze(dataclasses.replace(request, n_steps=64), task_models[head])
    a = result.attribution
    assert float(a.scores.sum()) == pytest.approx(a.score_input - a.score_baseline + a.delta, abs=1e-5)
    assert abs(a.delta) < 1e-3 * max(1.0, abs(a.score_input - a.score_baseline)) + 1e-4
    np.testing.assert_allclose(a.scores[result.tokens.special], 0.0, atol=1e-7)
    np.testing.assert_allclose(result.word_scores.sum(), a.scores.sum(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("task", list(TASKS))
def test_removing_words_is_refused_only_where_the_target_reads_one_position(task_contexts, task):
    context = task_contexts[task]
    keep = np.ones((2, context.n_words), dtype=bool)
    keep[1, 0] = False
    if TARGETS[context.target.spec.kind].position_bound:
        with pytest.raises(InputError) as error:
            word_scorer(context, "remove")
        message = str(error.value)
        assert message.endswith(".") and message.count(". ") == 0 and "replace" in message
    else:
        scores = word_scorer(context, "remove")(keep)
        assert scores.shape == (2,) and np.isfinite(scores).all()
    assert np.isfinite(word_scorer(context, "replace")(keep)).all()


# ---------------------------------------------------------------- entities and answers from the logits


def spans_of(labels: list[str], special: list[bool] | None = None) -> list[tuple[str, int, int]]:
    special_flags = np.array(special if special is not None else [False] * len(labels))
    spans = merge_entities(labels, np.linspace(0.5, 0.9, len(labels)), special_flags)
    return [(s.label, s.first_token, s.last_token) for s in spans]


@pytest.mark.parametrize("labels, expected", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
    (["O", "I-PER", "I-PER", "O"], [("PER", 1, 2)]),  # I- without B- starts an entity
    (["B-PER", "B-PER", "I-PER"], [("PER", 0, 0), ("PER", 1, 2)]),  # B- always starts a new one
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),  # another type starts a new one
    (["O", "O"], []),
    (["NOUN", "NOUN", "VERB", "O", "NOUN"], [("NOUN", 0, 1), ("VERB", 2, 2), ("NOUN", 4, 4)]),  # no prefix: runs
    (["B_ORG", "I_ORG"], [("ORG", 0, 1)]),
])
def test_merge_entities_follows_bio(labels, expected):
    assert spans_of(labels) == expected


def test_special_tokens_end_an_entity_and_belong_to_none():
    assert spans_of(["B-PER", "I-PER", "I-PER", "I-PER"], [False, False, True, False]) == [("PER", 0, 1),
                                                                                           ("PER", 3, 3)]


def test_an_entity_scores_the_mean_of_its_tokens():
    probabilities = np.array([0.9, 0.5, 0.7, 0.2])
    (span,) = merge_entities(["O", "B-LOC", "I-LOC", "O"], probabilities, np.zeros(4, dtype=bool))
    assert span.score == pytest.approx(0.6)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 6))
def test_best_span_is_the_brute_force_best(seed, n, max_tokens):
    rng = np.random.default_rng(seed)
    start, end = rng.normal(size=n), rng.normal(size=n)
    allowed = rng.random(n) < 0.7
    allowed[rng.integers(n)] = True
    first, last, score = best_span(start, end, allowed, max_tokens)
    assert (first, last) == brute_force_span(start, end, allowed, max_tokens)
    assert score == pytest.approx(start[first] + end[last])


# ---------------------------------------------------------------- the JSON form of every task


@pytest.mark.parametrize("task", list(TASKS))
def test_an_analysis_of_every_task_reads_back_unchanged(task_models, task):
    head, request = TASKS[task]
    result = analyze(dataclasses.replace(request, n_steps=4), task_models[head])
    text = result.to_json()
    back = Analysis.from_json(text)
    assert back.to_json() == text
    assert back.request == result.request and back.request.texts == request.texts
    assert back.prediction.spans == result.prediction.spans
    np.testing.assert_array_equal(back.words.segments if back.words.segments is not None else [],
                                  result.words.segments if result.words.segments is not None else [])
    assert json.loads(text)["task"] == task_models[head].head


def test_schema_1_files_still_read_without_the_new_fields():
    text = (FIXTURES / "analysis_v1.json").read_text()
    data = json.loads(text)
    assert "task" not in data and "pair" not in data["request"] and "spans" not in data["prediction"]
    analysis = Analysis.from_json(text)
    assert analysis.request.texts == (analysis.request.text,) and analysis.prediction.spans == ()
    assert analysis.tokens.segments is None and analysis.words.segments is None
    assert analysis.entities == ()


# ---------------------------------------------------------------- one-sentence errors


def one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message.rstrip(".")


@pytest.mark.parametrize("head, request_, match", [
    ("question_answering", AnalysisRequest(TEXT), "needs a question"),
    ("question_answering", AnalysisRequest(TEXT, pair=PAIR), "needs a question"),
    ("next_sentence", AnalysisRequest(TEXT), "needs a second text"),
    ("next_sentence", AnalysisRequest(TEXT, question=QUESTION), "needs a second text"),
    ("pretraining", AnalysisRequest(TEXT, target=TargetSpec("next_sentence")), "needs a second text"),
    ("token_classification", AnalysisRequest(TEXT, target=TargetSpec("token_class", token=99)), "no token 99"),
    ("question_answering", AnalysisRequest(TEXT, question=QUESTION, target=TargetSpec("answer", token=99)),
     "no token 99"),
    ("question_answering", AnalysisRequest(TEXT, question=QUESTION, target=TargetSpec("answer", part="middle")),
     "Unknown answer part 'middle'"),
    ("next_sentence", AnalysisRequest(TEXT, pair=PAIR, question=QUESTION), "either a second text or a question"),
    ("question_answering", AnalysisRequest(TEXT, question=" ".join(["what"] * 80)), "no room for the context"),
    ("token_classification", AnalysisRequest(TEXT, target=TargetSpec("token_class", label="B-FOOD")),
     "no label 'B-FOOD'"),
    ("multi_label", AnalysisRequest(TEXT, target=TargetSpec("answer")), "cannot explain"),
])
def test_task_errors_are_one_sentence(task_models, head, request_, match):
    with pytest.raises(InputError, match=match) as error:
        analyze(dataclasses.replace(request_, n_steps=2), task_models[head])
    assert one_sentence(str(error.value)), str(error.value)


# ---------------------------------------------------------------- every predicted entity explained


@pytest.fixture(scope="module")
def ner_analysis(task_models):
    return analyze(AnalysisRequest(TEXT, n_steps=16), task_models["token_classification"])


def test_every_entity_is_explained_with_its_own_label_at_its_first_token(task_models, plain_models, ner_analysis):
    loaded = task_models["token_classification"]
    entities = explain_entities(ner_analysis, loaded)
    out, _ = plain_output(plain_models, "token_classification", TEXT)
    id2label = plain_models["token_classification"][0].config.id2label
    assert len(entities) == len(ner_analysis.prediction.spans) >= 2
    for entity, span in zip(entities, ner_analysis.prediction.spans):
        probabilities = torch.softmax(out.logits[0, span.first_token], -1)
        assert entity.token_label == id2label[int(probabilities.argmax())]
        assert entity.label == span.label and entity.token_label.endswith(span.label)
        assert entity.explained == pytest.approx(float(probabilities.max()), rel=1e-5, abs=1e-7)
        assert (entity.first_token, entity.last_token, entity.score) == (span.first_token, span.last_token,
                                                                         span.score)
        words = ner_analysis.words
        assert entity.words == tuple(words.words[w] for w in sorted(set(
            words.token_word[span.first_token : span.last_token + 1].tolist())) if w >= 0)
        assert entity.word_scores.shape == (len(words),) and entity.method == "integrated_gradients"
    # the first entity is what the analysis itself explains
    np.testing.assert_allclose(entities[0].word_scores, ner_analysis.word_scores, rtol=1e-5, atol=1e-7)
    assert entities[0].explained == pytest.approx(ner_analysis.attribution.score_input)


def test_explained_entities_read_back_from_json(task_models, ner_analysis):
    loaded = task_models["token_classification"]
    with_entities = dataclasses.replace(ner_analysis, entities=explain_entities(ner_analysis, loaded,
                                                                                "gradient_x_input"))
    text = with_entities.to_json()
    back = Analysis.from_json(text)
    assert back.to_json() == text
    for a, b in zip(back.entities, with_entities.entities):
        assert (a.label, a.token_label, a.words, a.explained, a.method) == (b.label, b.token_label, b.words,
                                                                            b.explained, "gradient_x_input")
        np.testing.assert_array_equal(a.word_scores, b.word_scores)
    damaged = json.loads(text)
    damaged["entities"][0]["word_scores"] = damaged["word_scores"] | {"shape": [1]}
    with pytest.raises(SchemaError, match=r"entities\[0\]\.word_scores"):
        Analysis.from_json(json.dumps(damaged))


def test_only_token_classification_has_entities(task_models):
    result = analyze(AnalysisRequest(TEXT, n_steps=2), task_models["multi_label"])
    with pytest.raises(InputError, match="Only a token-classification analysis"):
        explain_entities(result, task_models["multi_label"])


@pytest.mark.parametrize("head, request_, notice", [
    ("next_sentence", AnalysisRequest(FIRST, pair=SECOND, max_tokens=20),
     "The two texts have {n} tokens together; each was cut from its end, the longer first, to 20 tokens."),
    ("question_answering", AnalysisRequest(FIRST, question=QUESTION, max_tokens=20),
     "The question and the context have {n} tokens together; the context was cut from its end to fit 20 tokens."),
])
def test_a_cut_pair_says_how_it_was_cut(task_models, pair_tokenizer, head, request_, notice):
    result = analyze(dataclasses.replace(request_, n_steps=2), task_models[head])
    n = len(pair_tokenizer(*request_.texts)["input_ids"])
    assert len(result.tokens) == 20 and result.notices == (notice.format(n=n),)


@pytest.mark.parametrize("task", list(TASKS))
def test_the_readout_row_is_a_distribution_over_what_the_target_reads(task_contexts, task):
    context = task_contexts[task]
    weights = context.target.readout_weights(context.attention_mask)
    assert weights.shape == (context.n_tokens,) and (weights >= 0).all()
    assert weights.sum() == pytest.approx(1.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "NOUN"]), st.booleans()),
                max_size=14))
def test_entities_cover_every_labelled_ordinary_token_once(tokens):
    labels = [label for label, _ in tokens]
    special = np.array([flag for _, flag in tokens], dtype=bool)
    spans = merge_entities(labels, np.full(len(labels), 0.5), special)
    covered = [i for s in spans for i in range(s.first_token, s.last_token + 1)]
    assert covered == sorted(set(covered))  # in order, no overlap
    assert set(covered) == {i for i, label in enumerate(labels) if label != "O" and not special[i]}
    for s in spans:
        inside = [labels[i].split("-")[-1] for i in range(s.first_token, s.last_token + 1)]
        assert set(inside) == {s.label}
        assert all(not labels[i].startswith("B-") for i in range(s.first_token + 1, s.last_token + 1))


def test_a_token_with_the_span_score_is_refused(task_models):
    with pytest.raises(InputError, match="span score reads the answer's own tokens") as error:
        analyze(AnalysisRequest(TEXT, question=QUESTION, target=TargetSpec("answer", part="span", token=8), n_steps=2),
                task_models["question_answering"])
    assert one_sentence(str(error.value))


def test_entities_of_an_analysis_at_a_later_entity_reuse_only_that_one(task_models, ner_analysis):
    loaded = task_models["token_classification"]
    second = ner_analysis.prediction.spans[1]
    at_second = analyze(AnalysisRequest(TEXT, n_steps=16, target=TargetSpec("token_class", token=second.first_token)),
                        loaded)
    fresh = explain_entities(ner_analysis, loaded)
    reused = explain_entities(at_second, loaded)
    for a, b in zip(fresh, reused):
        assert (a.token_label, a.words) == (b.token_label, b.words)
        assert a.explained == pytest.approx(b.explained, rel=1e-6)
        np.testing.assert_allclose(a.word_scores, b.word_scores, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("seed", range(5))
def test_the_default_answer_is_the_one_transformers_extracts(seed):
    """The longest answer is transformers' extractive default (`max_answer_len=15`), so a long span the pipeline
    would not give is not the answer explained here either."""
    import inspect

    from transformers.pipelines.document_question_answering import select_starts_ends

    default = inspect.signature(select_starts_ends).parameters["max_answer_len"].default
    rng = np.random.default_rng(seed)
    n = 40
    start, end = rng.normal(size=n), rng.normal(size=n)
    start[5], end[5 + 20] = 6.0, 6.0  # the best span overall is 21 tokens long
    allowed = np.ones(n, dtype=bool)
    allowed[[0, n - 1]] = False  # [CLS] and the last [SEP]
    (first,), (last,), _, _ = select_starts_ends(start[None], end[None], (~allowed).astype(int)[None],
                                                 np.ones((1, n), dtype=int))
    assert best_span(start, end, allowed)[:2] == (int(first), int(last))
    assert int(last) - int(first) < default
