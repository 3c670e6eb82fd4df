"""The pair classifier: P(distilled) from a handful of background-relative pair features.

A logistic model whose coefficients can be constrained to be non-negative: every pair feature
is oriented so that larger means "more like the teacher than the background is", and with a
few dozen labelled pairs a sign constraint is the cheapest guard against weights that fit the
development lineages but flip meaning on a teacher family never seen. Probabilities are then
recalibrated with Platt scaling fitted on out-of-fold scores, so they stay honest when the
training set is small enough for the logistic fit itself to be over-confident; the same
out-of-fold scores of the negative pairs are kept as the null sample for p-values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import t as student_t
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

_EPS = 1e-12


def _fit_logistic(
    x: np.ndarray, y: np.ndarray, c: float, positive: bool
) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression (intercept unpenalised) by L-BFGS-B."""
    n, d = x.shape

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        z = x @ w + b
        # log(1 + exp(z)) - y z, written to stay finite for large |z|
        value = np.logaddexp(0.0, z) - y * z
        grad_z = expit(z) - y
        obj = value.mean() + 0.5 * float(w @ w) / (c * n)
        grad = np.concatenate([x.T @ grad_z / n + w / (c * n), [grad_z.mean()]])
        return float(obj), grad

    bounds = [(0.0, None) if positive else (None, None)] * d + [(None, None)]
    result = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x[:d].copy(), float(result.x[d])


@dataclass(frozen=True)
class ClassifierParams:
    """The classifier's constructor arguments: what training configs set and artifacts record
    (the shipped defaults are ``training.ClassifierHyperparameters``')."""

    C: float
    positive: bool
    calibration_cv: int
    calibration_C: float
    random_state: int

    def make(self) -> DistillationClassifier:
        return DistillationClassifier(**asdict(self))


class DistillationClassifier(ClassifierMixin, BaseEstimator):
    """Binary classifier: standardise, (sign-constrained) logistic fit, CV Platt recalibration.

    Parameters
    ----------
    C : inverse L2 strength on the standardised coefficients.
    positive : constrain coefficients to be >= 0 (features oriented toward "distilled").
    calibration_cv : folds for the out-of-fold Platt step; 0 or 1 disables it. Folds are
        reduced to the minority class count and the step is skipped below 2.
    calibration_C : inverse L2 strength on the Platt slope. Separable training pairs push an
        unpenalised slope toward infinity (probabilities of exactly 0 or 1); the penalty keeps
        probabilities honest for pairs unlike the training set.
    random_state : seeds the fold shuffle.

    The defaults are scikit-learn's plain ones (no sign constraint, a weak slope penalty);
    the shipped scoring model's settings are ``ClassifierParams``' as its config gives them.
    """

    def __init__(
        self,
        C: float = 1.0,
        positive: bool = False,
        calibration_cv: int = 5,
        calibration_C: float = 1.0,
        random_state: int | None = None,
    ) -> None:
        self.C = C
        self.positive = positive
        self.calibration_cv = calibration_cv
        self.calibration_C = calibration_C
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X: Any, y: Any) -> DistillationClassifier:
        x, y_arr = validate_data(self, X, y, dtype=np.float64)
        y_type = type_of_target(y_arr, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {y_type}."
            )
        classes = np.unique(y_arr)
        if len(classes) < 2:
            raise ValueError("training data holds one class; need labelled pairs of both classes")
        self.classes_ = classes
        target = (y_arr == self.classes_[1]).astype(np.float64)
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale_ = np.where(scale > _EPS, scale, 1.0)
        z = (x - self.mean_) / self.scale_
        self.coef_, self.intercept_ = _fit_logistic(z, target, self.C, self.positive)
        oof = self._out_of_fold_logits(z, target)
        if oof is None:
            self.platt_ = np.array([1.0, 0.0])
            oof = z @ self.coef_ + self.intercept_
        else:
            slope, offset = _fit_logistic(oof[:, None], target, self.calibration_C, positive=True)
            self.platt_ = np.array([float(slope[0]), offset])
        # Scores of held-out negatives: the reference a new pair's p-value is read against.
        self.null_scores_ = np.sort(self.platt_[0] * oof[target == 0] + self.platt_[1])
        return self

    def _calibration_folds(
        self, z: np.ndarray, target: np.ndarray
    ) -> Iterable[tuple[np.ndarray, np.ndarray]] | None:
        """(train, test) indices of the out-of-fold step; None when the classes are too small.
        Random, class-stratified folds (evaluation/families/grouped_calibration.py measures
        folds grouped by teacher instead)."""
        folds = min(self.calibration_cv, int(min(target.sum(), len(target) - target.sum())))
        if folds < 2:
            return None
        return StratifiedKFold(folds, shuffle=True, random_state=self.random_state).split(
            z, target)

    def _out_of_fold_logits(self, z: np.ndarray, target: np.ndarray) -> np.ndarray | None:
        """Logits of each sample from a model fitted without its fold; None if too few."""
        folds = self._calibration_folds(z, target)
        if folds is None:
            return None
        oof = np.zeros(len(target))
        for train, test in folds:
            w, b = _fit_logistic(z[train], target[train], self.C, self.positive)
            oof[test] = z[test] @ w + b
        return oof

    def null_p_values(self, X: Any) -> np.ndarray:
        """Conformal p-value per row: share of held-out negative training pairs scoring at
        least as high, (1 + count) / (1 + n). Exact when a new unrelated pair is exchangeable
        with the training negatives; never below 1 / (1 + n)."""
        scores = self.decision_function(X)
        null = self.null_scores_
        at_least = len(null) - np.searchsorted(null, scores, side="left")
        return np.asarray((1.0 + at_least) / (1.0 + len(null)))

    def tail_p_values(self, X: Any) -> np.ndarray:
        """The conformal p-value, refined beyond the largest null score, where ranks run out.

        Within the null's range this is exactly :meth:`null_p_values`, so its false-positive
        rate at any alpha >= 1 / (1 + n) is the conformal one. A score above every null score
        gets ``1 / (1 + n)`` times the chance, under a Student-t predictive fit to the null
        scores, of exceeding this score given that the largest null score is exceeded: the
        tail is extrapolated from the null instead of stopping at the rank floor.
        """
        scores = self.decision_function(X)
        conformal = self.null_p_values(X)
        null = self.null_scores_
        if len(null) < 3 or float(np.std(null)) <= _EPS:
            return conformal
        n = len(null)
        scale = float(np.std(null, ddof=1)) * np.sqrt(1.0 + 1.0 / n)
        tail = student_t(df=n - 1, loc=float(np.mean(null)), scale=scale)
        beyond = scores > null[-1]
        ratio = tail.sf(scores[beyond]) / max(float(tail.sf(null[-1])), 1e-300)
        out = np.array(conformal, dtype=np.float64)
        out[beyond] = np.clip(ratio, 1e-12, 1.0) / (1.0 + n)
        return out

    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        x = validate_data(self, X, dtype=np.float64, reset=False)
        logit = ((x - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return np.asarray(self.platt_[0] * logit + self.platt_[1])

    def predict_proba(self, X: Any) -> np.ndarray:
        p1 = expit(self.decision_function(X))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        positive = self.decision_function(X) > 0
        return np.asarray(self.classes_[positive.astype(int)])

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the fitted model (the shipped artifact)."""
        check_is_fitted(self)
        return {
            "params": self.get_params(),
            "classes": [c.item() if hasattr(c, "item") else c for c in self.classes_],
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "platt": self.platt_.tolist(),
            "null_scores": self.null_scores_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistillationClassifier:
        model = cls(**data["params"])
        model.classes_ = np.asarray(data["classes"])
        model.mean_ = np.asarray(data["mean"], dtype=np.float64)
        model.scale_ = np.asarray(data["scale"], dtype=np.float64)
        model.coef_ = np.asarray(data["coef"], dtype=np.float64)
        model.intercept_ = float(data["intercept"])
        model.platt_ = np.asarray(data["platt"], dtype=np.float64)
        model.null_scores_ = np.asarray(data["null_scores"], dtype=np.float64)
        model.n_features_in_ = len(model.coef_)
        return model
