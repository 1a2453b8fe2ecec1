"""One row per transformers `model_type`: what the library needs to know about each encoder family.

Loading (which model types are accepted, how many tokens fit), targets (position ids), heads (where the
attention projections are), depth (embedding parts, one module per layer) and the work estimate (config
names of the sizes) read this table instead of lists of their own. Module paths are dotted attribute paths:
`embeddings`, `layers` and the embedding tables from the bare encoder (`LoadedModel.encoder`); the per-layer
paths from one transformer layer (an entry of `layers`, through `layer` where the entry wraps it).

A leaf: imports nothing from the project but `explain.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from explain.errors import InputError

POSITION_RULES = {
    "arange": "0, 1, 2, ... for every token, pads included",
    "after_padding": "padding_idx + 1, + 2, ... for the other tokens and padding_idx for pads (fairseq's rule)",
}


@dataclass(frozen=True)
class ModelFamily:
    """One encoder family.

    positions: a key of POSITION_RULES. specials: special tokens added to one text and to a pair.
    plain_dot_product: attention is exactly softmax(scaling * q . k + mask), with no relative-position terms.
    shared_layers: one layer module runs several layers (ALBERT), so a layer's output has no module of its own.
    query/key/value: None where the family fuses them into one projection (DeBERTa v1).
    config_sizes: the config names of (layers, hidden size, feed-forward size).
    heads: for each head (a `HeadReadout.head`), its linear and layer-norm modules from the last hidden state to
    the logits, in order; a path starting with "base." is read from the bare encoder, the others from the whole
    model. Only elementwise maps (activations, dropout) come between two of them, and the first reads one row of
    the last hidden states (the first token's for sequence heads).
    position_wise_from: the per-layer module from which on a layer works position by position, called with both
    attention's context and the layer's input (the residual), so both can be cut to one position; None where the
    residual joins elsewhere.
    """

    model_type: str
    title: str
    positions: str
    specials: tuple[int, int]
    token_embeddings: str
    position_embeddings: str | None
    segment_embeddings: str | None
    layers: str
    attention: str
    query: str | None
    key: str | None
    value: str | None
    attention_output: str
    attention_norm: str
    feed_forward: tuple[str, str]
    output_norm: str
    plain_dot_product: bool
    layer: str = ""
    shared_layers: bool = False
    embeddings: str = "embeddings"
    config_sizes: tuple[str, str, str] = ("num_hidden_layers", "hidden_size", "intermediate_size")
    heads: tuple[tuple[str, tuple[str, ...]], ...] = ()
    position_wise_from: str | None = None

    def layer_path(self, index: int, name: str) -> str:
        """Dotted path from the bare encoder to `name` (a per-layer path) in entry `index` of `layers`."""
        return ".".join(p for p in (self.layers, str(index), self.layer, name) if p)

    def module_paths(self) -> dict[str, str]:
        """Every per-layer module path of the row, by role (for checks and documentation)."""
        roles = {"attention": self.attention, "query": self.query, "key": self.key, "value": self.value,
                 "attention_output": self.attention_output, "attention_norm": self.attention_norm,
                 "feed_forward_in": self.feed_forward[0], "feed_forward_out": self.feed_forward[1],
                 "output_norm": self.output_norm}
        return {role: path for role, path in roles.items() if path is not None}

    def head_modules(self, head: str) -> tuple[str, ...]:
        """The module paths of head `head` (see `heads`); InputError in one sentence where the row lists none."""
        for name, paths in self.heads:
            if name == head:
                return paths
        raise InputError(f"The {head.replace('_', ' ')} head of {self.title} models is not in the table of families.")

    def embedding_paths(self, config: Any) -> dict[str, str]:
        """The embedding tables the model adds together, by part ("token", "position", "segment").

        A part is left out where the family has no such table (DistilBERT, MPNet: no segments) or this config
        does not add it (DeBERTa with relative positions only, or no segment types).
        """
        found = {"token": self.token_embeddings}
        if self.position_embeddings and getattr(config, "position_biased_input", True):
            found["position"] = self.position_embeddings
        if self.segment_embeddings and int(getattr(config, "type_vocab_size", 1) or 0) > 0:
            found["segment"] = self.segment_embeddings
        return found

    def takes_segments(self, config: Any) -> bool:
        """Whether the model adds a segment table with a row per text: a pair's second text must reach it as
        segment 1 even where the tokenizer class lists no token_type_ids (ALBERT's, in transformers 5)."""
        return "segment" in self.embedding_paths(config) and int(getattr(config, "type_vocab_size", 0) or 0) > 1

    def max_positions(self, config: Any, padding_idx: int | None) -> int:
        """How many tokens the position table numbers: fewer than its rows where positions start after padding."""
        limit = int(getattr(config, "max_position_embeddings", 512) or 512)
        if self.positions == "after_padding":
            limit -= (1 if padding_idx is None else int(padding_idx)) + 1
        return limit


BERT = ModelFamily(
    model_type="bert", title="BERT", positions="arange", specials=(2, 3),
    token_embeddings="embeddings.word_embeddings", position_embeddings="embeddings.position_embeddings",
    segment_embeddings="embeddings.token_type_embeddings", layers="encoder.layer", attention="attention.self",
    query="attention.self.query", key="attention.self.key", value="attention.self.value",
    attention_output="attention.output.dense", attention_norm="attention.output.LayerNorm",
    feed_forward=("intermediate.dense", "output.dense"), output_norm="output.LayerNorm", plain_dot_product=True,
    position_wise_from="attention.output",
    heads=(
        ("classification", ("base.pooler.dense", "classifier")),
        ("next_sentence", ("base.pooler.dense", "cls.seq_relationship")),
        ("masked_lm", ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
                       "cls.predictions.decoder")),
        ("token_classification", ("classifier",)),
        ("question_answering", ("qa_outputs",)),
    ),
)
TOKEN_HEADS = BERT.heads[3:]
ROBERTA = replace(
    BERT, model_type="roberta", title="RoBERTa", positions="after_padding", specials=(2, 4),
    heads=(("classification", ("classifier.dense", "classifier.out_proj")),
           ("masked_lm", ("lm_head.dense", "lm_head.layer_norm", "lm_head.decoder")), *TOKEN_HEADS),
)

FAMILIES: dict[str, ModelFamily] = {
    family.model_type: family
    for family in (
        BERT,
        ROBERTA,
        replace(ROBERTA, model_type="xlm-roberta", title="XLM-RoBERTa"),
        replace(ROBERTA, model_type="camembert", title="CamemBERT"),
        replace(BERT, model_type="electra", title="ELECTRA", heads=(
            ("classification", ("classifier.dense", "classifier.out_proj")),
            ("masked_lm", ("generator_predictions.dense", "generator_predictions.LayerNorm", "generator_lm_head")),
            *TOKEN_HEADS)),
        replace(
            BERT, model_type="distilbert", title="DistilBERT", segment_embeddings=None, layers="transformer.layer",
            attention="attention", query="attention.q_lin", key="attention.k_lin", value="attention.v_lin",
            attention_output="attention.out_lin", attention_norm="sa_layer_norm", feed_forward=("ffn.lin1", "ffn.lin2"),
            output_norm="output_layer_norm", config_sizes=("n_layers", "dim", "hidden_dim"), position_wise_from=None,
            heads=(("classification", ("pre_classifier", "classifier")),
                   ("masked_lm", ("vocab_transform", "vocab_layer_norm", "vocab_projector")), *TOKEN_HEADS),
        ),
        replace(
            BERT, model_type="albert", title="ALBERT", layers="encoder.albert_layer_groups", layer="albert_layers.0",
            shared_layers=True, position_wise_from=None, attention="attention", query="attention.query", key="attention.key",
            value="attention.value", attention_output="attention.dense", attention_norm="attention.LayerNorm",
            feed_forward=("ffn", "ffn_output"), output_norm="full_layer_layer_norm",
            heads=(("classification", ("base.pooler", "classifier")),
                   ("masked_lm", ("predictions.dense", "predictions.LayerNorm", "predictions.decoder")),
                   *TOKEN_HEADS),
        ),
        replace(
            ROBERTA, model_type="mpnet", title="MPNet", segment_embeddings=None, attention="attention.attn",
            query="attention.attn.q", key="attention.attn.k", value="attention.attn.v",
            attention_output="attention.attn.o", attention_norm="attention.LayerNorm", plain_dot_product=False,
            position_wise_from=None,
        ),
        replace(
            BERT, model_type="deberta-v2", title="DeBERTa-v2", query="attention.self.query_proj",
            key="attention.self.key_proj", value="attention.self.value_proj", plain_dot_product=False, heads=(),
            position_wise_from=None,
        ),
        replace(BERT, model_type="deberta", title="DeBERTa", specials=(2, 4), query=None, key=None, value=None,
                plain_dot_product=False, heads=(), position_wise_from=None),
    )
}


def model_type_of(config_or_model_type: Any) -> str:
    """The model_type of a config (or of a model, through its config), or the string itself."""
    if isinstance(config_or_model_type, str):
        return config_or_model_type
    config = getattr(config_or_model_type, "config", config_or_model_type)
    return str(getattr(config, "model_type", "") or "")


def family_of(config_or_model_type: Any, feature: str = "this dashboard") -> ModelFamily:
    """The table row of a config, a model or a model_type; InputError in one sentence for a family not listed."""
    model_type = model_type_of(config_or_model_type)
    family = FAMILIES.get(model_type)
    if family is None:
        raise InputError(f"The model family '{model_type or 'unknown'}' is not supported for {feature}; "
                         f"supported: {', '.join(FAMILIES)}.")
    return family


def model_shape(config: Any, default: tuple[int, int, int]) -> tuple[int, int, int]:
    """(layers, hidden size, feed-forward size) of a config by its family's names; `default`'s values where the
    family is not listed or the config lacks one (feed-forward: 4 x hidden)."""
    if config is None:
        return default
    family = FAMILIES.get(model_type_of(config))
    names = family.config_sizes if family else FAMILIES["bert"].config_sizes
    layers, hidden, inner = (getattr(config, name, None) for name in names)
    hidden = int(hidden or default[1])
    return int(layers or default[0]), hidden, int(inner or 4 * hidden)


def resolve(root: Any, path: str) -> Any:
    """The attribute at a dotted path under `root` (a module list's entries are named by their index);
    InputError when absent."""
    found = root
    for part in path.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise InputError(f"This model has no '{path}' module, so its family's layout does not fit it.")
    return found
