"""The lineage benchmark's result JSON, shape by shape.

TypedDicts rather than dataclasses: the benchmark writes these dicts with ``json.dumps`` and
scripts read the committed ``results.json`` files back as plain dicts, so the types describe
that JSON without changing a byte of it. Key order in the file is the order in which the
producers build each dict, not the order of the fields here.
"""

# No `from __future__ import annotations` here: a TypedDict tells NotRequired keys apart only
# from evaluated annotations, and the test of the committed files reads __required_keys__.
from typing import Any, Literal, NotRequired, TypedDict, final


class DetectionMetrics(TypedDict):
    """AUROC and TPR at fixed FPRs over the labelled pairs; None where undefined."""

    auroc: float | None
    tpr_at_1pct_fpr: float | None
    tpr_at_5pct_fpr: float | None
    n_positive: int
    n_negative: int
    n_unscored: int
    # only when the method gives probabilities (the baselines give bare scores)
    ece: NotRequired[float | None]
    ece_ci95: NotRequired[list[float] | None]


class AttributionSummary(TypedDict):
    attribution_correct: int
    attribution_total: int


# Keys "fpr_at_<alpha>" and "tpr_at_<alpha>" for each of metrics.P_VALUE_ALPHAS: written and
# read by formatting the alphas in, so a TypedDict's literal keys could not check them.
PValueRates = dict[str, float | None]

# the pair records' p-values that the result tallies
PValueField = Literal["p_value", "conformal_p_value", "background_p_value"]

VerdictCounts = TypedDict(
    "VerdictCounts", {"distilled": int, "not distilled": int, "inconclusive": int}
)


class PairRecord(TypedDict):
    teacher: str
    suspect: str
    relation: str
    label: int | None
    probability: float | None
    decision: float | None
    p_value: float | None
    conformal_p_value: float | None
    background_p_value: float | None
    verdict: str
    reasons: list[str]
    features: dict[str, float | None]


class AttributionCaseRecord(TypedDict):
    suspect: str
    true_teachers: list[str]
    predicted: str | None
    correct: bool
    scores: dict[str, float | None]


class MethodInfo(TypedDict):
    mode: str
    views: list[str]
    features: list[str]
    artifact: str | None
    notes: list[str]
    mode_reason: str


class MethodScores(DetectionMetrics, AttributionSummary):
    """The scorer's own numbers: the head of the result, before the teacher comparisons."""

    p_value: PValueRates
    conformal_p_value: PValueRates
    background_p_value: PValueRates
    verdicts: VerdictCounts
    method: MethodInfo
    pairs: list[PairRecord]
    attribution: list[AttributionCaseRecord]


class TeacherRelation(TypedDict):
    """One teacher scored as a suspect of another."""

    teacher: str
    suspect: str
    probability: float | None


class LookalikeShare(TypedDict):
    """The background models that score as one teacher's students."""

    teacher: str
    n_background: int
    n_lookalikes: int
    models: list[str]


class BaselineSettings(TypedDict):
    """Each baseline's own: pos_template and mmd sample prompts, tfidf_cosine has none."""

    n_prompts: NotRequired[int]
    background_pool: NotRequired[int]  # pos_template
    permutations: NotRequired[int]  # mmd


# final: so that mypy tells a baseline's two forms apart by a key (`"skipped" in outcome`)
@final
class BaselineResult(DetectionMetrics, AttributionSummary, BaselineSettings):
    seconds: float
    pair_scores: list[tuple[str, str, float | None]]  # [teacher, suspect, score] in the JSON


@final
class SkippedBaseline(TypedDict):
    skipped: str  # why it could not run: "<exception type>: <message>"


BaselineOutcome = BaselineResult | SkippedBaseline


class VerdictTally(TypedDict):
    """Labelled pairs by verdict under a policy's P / p thresholds alone."""

    negatives: int
    negatives_p_at_alpha: int
    negatives_distilled: int
    positives: int
    positives_distilled: int
    positives_not_distilled: int


TallyKey = Literal[
    "negatives",
    "negatives_p_at_alpha",
    "negatives_distilled",
    "positives",
    "positives_distilled",
    "positives_not_distilled",
]


class FixedModelCounts(VerdictTally):
    """One prompt draw scored by classifiers fitted on all prompts."""

    ece: float | None


class Rate(TypedDict):
    """A share pooled over draws (``count`` of ``of``) with its 95% Wilson interval over
    ``pairs``: the most pairs one draw scored (every pair, unless a draw leaves some
    unscored)."""

    rate: float | None
    ci95: list[float]
    count: int
    of: int
    pairs: int


class FixedModelSummary(TypedDict):
    """``FixedModelCounts`` pooled over the draws of one budget."""

    negatives_p_at_alpha: Rate
    negatives_distilled: Rate
    positives_distilled: Rate
    positives_not_distilled: Rate
    ece_mean: float | None


class BudgetRun(TypedDict):
    n_prompts: int
    seed: int | None  # None: the run on every prompt, which draws nothing
    auroc: float | None
    tpr_at_5pct_fpr: float | None
    attribution_correct: int
    attribution_total: int
    fixed_model: NotRequired[FixedModelCounts]


class BudgetSummary(TypedDict):
    n_prompts: int
    runs: int
    auroc_mean: float | None
    auroc_min: float | None
    tpr_at_5pct_fpr_mean: float | None
    attribution_correct_mean: float
    attribution_total: int
    fixed_model: NotRequired[FixedModelSummary]


class QueryBudget(TypedDict):
    budgets: list[int]
    runs: list[BudgetRun]
    summary: list[BudgetSummary]


class BudgetValidityRow(FixedModelSummary):
    """One budget of a scoring model's table of verdicts on fewer prompts."""

    n_prompts: int
    draws: int
    negative_p_values: list[float]


class DataProvenance(TypedDict):
    pairs_csv: str
    response_dirs: list[str]
    n_models: int
    n_models_used: int
    n_prompts: int
    background: list[str]
    left_out: NotRequired[dict[str, list[str]]]  # model -> the two files that disagree
    left_out_no_style: NotRequired[dict[str, str]]  # model -> why
    left_out_copies: NotRequired[dict[str, str]]  # model -> whose answers it gives


class Seeds(TypedDict):
    background: int
    classifier: int
    query_budget: list[int]


class Provenance(TypedDict):
    data: DataProvenance
    config: dict[str, Any]  # the LineageConfig as run, dumped by pydantic
    seeds: Seeds
    package_version: str
    git_commit: str | None
    python: str


class LineageResult(MethodScores, Provenance):
    """The whole ``results.json`` of ``distillprint benchmark lineage``."""

    schema_version: int
    kind: Literal["lineage_benchmark"]
    teacher_relations: list[TeacherRelation]
    teacher_lookalikes: list[LookalikeShare]
    attribution_wrong_between_related: int
    baselines: dict[str, BaselineOutcome]
    query_budget: QueryBudget
    timings: dict[str, float]
