"""What an analysis is asked to do: the request records, their defaults and the schema version.

Requests are frozen and hashable: caches key on them and share links are written from them.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 3
# v1 -> v2: requests name their attribution method and its settings; an analysis holds several methods'
# attributions (`methods`) and their faithfulness. v2 -> v3: requests name integrated gradients' quadrature
# rule (`integration`), whose default became adaptive. `migrate` upgrades older documents as they are read.
APP_VERSION = "0.1.0"

BASELINES = ("pad", "mask", "zero")
MIN_STEPS, MAX_STEPS = 1, 1000
DEFAULT_STEPS = 50
# Adaptive Simpson also refines until |delta| is within this share of the score change (None: tokens only, as
# requests stored before the check existed decode, so they reopen with the same numbers).
DEFAULT_DELTA_TOLERANCE = 0.05
# Integrated gradients' quadrature rules (explain.methods.quadrature): fixed Gauss-Legendre steps, nested Clenshaw-Curtis
# levels stopping on the convergence delta, adaptive Simpson panels stopping on the attribution vector's error.
INTEGRATIONS = ("adaptive_simpson", "gauss_legendre", "clenshaw_curtis")
DEFAULT_INTEGRATION = "adaptive_simpson"
FIXED_INTEGRATION = "gauss_legendre"
# The token limit of a request that names none: the library, the CLI and the dashboard share it.
DEFAULT_MAX_TOKENS = 128
# The limit analyses saved before requests recorded theirs were computed with.
LEGACY_MAX_TOKENS = 512


@dataclass(frozen=True)
class TargetSpec:
    """What scalar output is explained.

    kind: "class" (a class probability of a classification head),
    "masked_token" (probability of `label` at the first [MASK]),
    "zero_shot" (probability of `label` among `labels`, from cosine similarity
    of the mean-pooled embedding to each of `prompts`), or "similarity"
    (cosine similarity of the mean-pooled embedding to `reference`), and the kinds of
    newer heads: "next_sentence", "token_class" (`label` at token `token`) and "answer"
    (`part` "start", "end" or "span" of an extractive answer). `explain.targets.TARGETS`
    declares each kind and the fields it reads.
    An empty `label` (and a `token` of -1) means the model's top prediction.
    logit: explain the raw logit rather than the probability.
    """

    kind: str
    label: str = ""
    labels: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    reference: str = ""
    token: int = -1
    part: str = ""
    logit: bool = False


@dataclass(frozen=True)
class AnalysisRequest:
    """Everything needed to reproduce an analysis. `target=None` takes the model's default."""

    text: str
    model: str = "minilm"
    target: TargetSpec | None = None
    n_steps: int = DEFAULT_STEPS
    baseline: str = "pad"
    max_tokens: int = DEFAULT_MAX_TOKENS
    # Integrated gradients: `integration` is the quadrature rule. "adaptive_simpson" (the default) makes at most
    # n_steps model evaluations, stopping when the attribution vector's estimated error is within `tolerance`
    # (None: explain.methods.quadrature.SIMPSON_TOLERANCE) of its largest entry; "gauss_legendre" runs n_steps fixed
    # steps (no tolerance); "clenshaw_curtis" makes at most n_steps until |delta| <= tolerance * |score change|.
    # precision "bf16" runs the model under bfloat16 autocast.
    tolerance: float | None = None
    precision: str = "fp32"
    # The attribution method shown (a name in explain.methods.METHODS), and methods' settings other than the
    # integrated-gradients ones above as sorted ("method.setting", value) text pairs (hashable: requests key caches).
    method: str = "integrated_gradients"
    method_settings: tuple[tuple[str, str], ...] = ()
    # A second text: `pair` follows `text` in one input (sentence pairs, next-sentence prediction);
    # `question` is asked about `text`, the context (question answering: the question is encoded first).
    pair: str = ""
    question: str = ""
    # Heads knocked out for the whole analysis (explain.heads.HeadSet text, e.g. "0:1,2:*"; empty: none), and
    # what a removed head outputs: "zero", or "mean" (its mean output over the text, from the full model).
    ablate: str = ""
    ablate_mode: str = "zero"
    integration: str = DEFAULT_INTEGRATION
    delta_tolerance: float | None = DEFAULT_DELTA_TOLERANCE

    @property
    def texts(self) -> tuple[str, ...]:
        """The texts in the order the model reads them; token and word segments index into this."""
        return texts_in_order(self.text, self.pair, self.question)


def texts_in_order(text: str, pair: str = "", question: str = "") -> tuple[str, ...]:
    """The texts as the model reads them: (question, context) for question answering, (text, pair) for pairs."""
    if question:
        return (question, text)
    return (text, pair) if pair else (text,)


def implied_integration(tolerance: float | None) -> str:
    """The quadrature rule a request written before `integration` existed ran: fixed steps without a tolerance,
    nested Clenshaw-Curtis levels with one."""
    return FIXED_INTEGRATION if tolerance is None else "clenshaw_curtis"


@dataclass(frozen=True)
class HeadsRequest:
    """What the heads page computes from: the model, the text, the explained output and the token limit."""

    spec: str
    text: str
    target: TargetSpec | None
    max_tokens: int
    pair: str = ""  # a second text read with the first
    question: str = ""  # question answering: `text` is then the context

    @property
    def texts(self) -> tuple[str, ...]:
        """The texts in the order the model reads them (as `AnalysisRequest.texts`)."""
        return texts_in_order(self.text, self.pair, self.question)
