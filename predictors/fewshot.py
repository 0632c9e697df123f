"""Few-shot latency prediction on a device never seen before, in the spirit of HELP.

HELP (Lee et al., "HELP: Hardware-Adaptive Efficient Latency Prediction for NAS via
Meta-Learning", NeurIPS 2021) conditions a latency network on a *hardware embedding* (the
latencies of 10 fixed reference architectures on the device) and meta-learns its initial
weights with MAML over many devices, then fine-tunes on the new device's few measurements.

This module meta-learns the same thing in closed form, as a hierarchical Bayesian linear model
(the meta-learned-prior family of ALPaCA, Harrison et al. 2018, and R2-D2, Bertinetto et al.,
ICLR 2019):

1. *Per-device normalization* (``transform``): ``"relative"`` divides each device's latencies by
   their mean, so devices a hundred times apart share one scale and latency stays additive over
   layers (FBNet's and nn-Meter's lookup-table model is linear in per-layer one-hots);
   ``"log"`` takes ``log(latency)`` minus the device's mean log, so per-layer costs act as
   factors (a device twice as fast on every convolution is one shift, and a relative error
   costs the same on fast and slow networks). The target device's level is estimated from its
   shots. ``"auto"`` (default) lets meta-validation (step 5) pick the transform: on the HELP
   tables it picks ``relative`` for NB201 and ``log`` for FBNet.
2. *Shared features* ``phi(x) = [1, standardized x, h(x)]``, where ``h`` (optional,
   ``embedding="mlp"``) is the last hidden layer of a multi-task MLP trained to predict every
   meta-training device at once (torch, CPU): it learns non-linear structure that all devices
   share. The default is ``"none"``: on the one-hot table encodings latency is already close
   to linear and the MLP did not help (benchmarks/results/predictors_fewshot.md); it is meant
   for continuous encodings such as ``onnx_features``.
3. *A prior over devices*: one ridge-regression head ``w_d`` per meta-training device on
   ``phi``; their mean ``mu`` and covariance ``C`` (plus a shrinkage ``lambda * tr(C)/F * I``,
   which lets a new device leave the span of the known ones) are the prior ``N(mu, Sigma)``
   over the head of an unseen device.
4. *Adaptation* to K measured architectures is the exact Gaussian posterior of the head given
   the shots (noise variance ``noise``): no inner-loop SGD, so it is deterministic, takes
   microseconds, and cannot overfit K = 10 points the way fine-tuning a network can. The
   posterior mean head, projected on the prior's principal directions, is the device's
   *hardware embedding* (:attr:`AdaptedLatencyPredictor.embedding_`): the shots play the role
   of HELP's reference architectures (any K architectures work, fixed or not).
5. *Meta-validation*: ``transform``, ``shrinkage`` and ``noise`` (when not given) are chosen by
   leave-one-device-out episodes over the meta-training devices: the prior from the others,
   K random shots of the held-out device, Spearman on its other rows. Only the meta-training
   devices take part: a device given to :meth:`adapt` later never tunes anything. (The MLP
   features are
   trained once, on the relative latencies of all meta-training devices, so these episodes
   see a device that shaped the features; the held-out device never shapes the prior.)

What did not help (benchmarks/results/predictors_fewshot.md, judged by these meta-validation
episodes): describing a candidate by the meta-training devices' own latencies (HELP's idea of
a device as a ranking of reference architectures) as extra features with an isotropic prior,
or the devices' non-linear residuals as extra features; path or pairwise-interaction features;
choosing the shrinkage per device by the shots' marginal likelihood on NB201; choosing *which*
architectures to measure by greedy D-optimal design under the prior (meta-validation: NB201
0.9812 -> 0.9815, FBNet 0.9294 -> 0.9035). The structured prior from the heads' covariance
already carries how devices differ.

Why not MAML: with K = 10 and tens of parameters per device, a Gaussian prior learned from
the devices gives the Bayes-optimal linear adaptation in closed form, whereas MAML's few
gradient steps approximate a shrinkage towards a learned initialization. The embedding network
plays the part of HELP's meta-learned latency network.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.utils.validation import check_array, check_is_fitted

from cosearch.predictors._base import PredictorBase, feature_matrix

__all__ = ["FewShotLatencyPredictor", "AdaptedLatencyPredictor"]

_TRANSFORMS = ("relative", "log")
_LOG_KEY = "transform.log"  # marks the log transform in ``embed_state_`` (persisted tensors)
_SHRINKAGE_GRID = (0.0, 1e-3, 1e-2, 1e-1)
_NOISE_GRID = (1e-4, 1e-3, 1e-2)
_HEAD_RIDGE = 1e-3  # per-row ridge of the per-device heads: the heads see thousands of rows
_META_ROWS = 2000  # rows scored per held-out device in meta-validation


class FewShotLatencyPredictor(PredictorBase):
    """Meta-trained on many devices, adapted to a new one from K measurements.

    ``fit(X, Y)`` meta-trains: ``X`` is ``N x F`` (a table encoding or ``onnx_features`` rows;
    Architectures / ONNX models are encoded with ``onnx_features``), ``Y`` is ``N x M``
    latencies of ``M >= 2`` devices in ms (NaN where a device did not measure a row; every
    device needs at least 2 finite rows). ``predict(X)`` gives ``n x M`` latencies for the
    meta-training devices. :meth:`adapt` returns an :class:`AdaptedLatencyPredictor` for a new
    device.

    Parameters: ``shots`` (K used in meta-validation episodes; adaptation takes any K),
    ``transform`` ('auto', 'relative' or 'log': the per-device normalization of the module
    docstring; 'auto' picks by meta-validation), ``embedding`` ('mlp' or 'none'),
    ``hidden`` / ``embed_dim`` / ``epochs`` (the MLP),
    ``shrinkage`` and ``noise`` (None: chosen by meta-validation from
    ``(0, 1e-3, 1e-2, 1e-1)`` and ``(1e-4, 1e-3, 1e-2)``; ``noise`` is a variance in squared
    relative-latency units, 1e-3 = about 3% noise), ``meta_episodes`` (shot draws per held-out
    device), ``random_state``.

    Learned: ``transform_`` (the transform used), ``x_mean_``, ``x_std_``, ``scale_`` (mean
    latency per device, ms; the geometric mean under ``log``), ``coef_``
    (``M x P`` heads on ``phi``), ``prior_mean_`` (``P``), ``prior_cov_`` (``P x P``, shrinkage
    included), ``components_`` (prior principal directions, ``P x r``), ``shrinkage_``,
    ``noise_``, ``meta_scores_`` ({(shrinkage, noise): mean Spearman, for the chosen
    transform}), ``transform_scores_`` ({transform: best mean Spearman}; empty when nothing was
    chosen), ``embed_state_`` (torch tensors of the MLP, plus a ``transform.log`` flag under
    the log transform; None when neither), ``n_features_in_``, ``n_devices_``.
    """

    def __init__(
        self,
        shots: int = 10,
        transform: str = "auto",
        embedding: str = "none",
        hidden: int = 128,
        embed_dim: int = 32,
        epochs: int = 40,
        shrinkage: float | None = None,
        noise: float | None = None,
        meta_episodes: int = 8,
        random_state: int = 0,
    ) -> None:
        self.shots = shots
        self.transform = transform
        self.embedding = embedding
        self.hidden = hidden
        self.embed_dim = embed_dim
        self.epochs = epochs
        self.shrinkage = shrinkage
        self.noise = noise
        self.meta_episodes = meta_episodes
        self.random_state = random_state

    # -- meta-training ----------------------------------------------------------------------------
    def fit(self, X: Any, Y: Any) -> FewShotLatencyPredictor:
        """Meta-train on ``X`` (N x F) and device latencies ``Y`` (N x M); returns ``self``.

        Raises ValueError when ``Y`` is not 2-D with ``M >= 2`` columns, a latency is not
        positive, a device has fewer than 2 measured rows, or a parameter is invalid.
        """
        if self.embedding not in ("mlp", "none"):
            raise ValueError(f"embedding must be 'mlp' or 'none'; got {self.embedding!r}")
        if self.transform not in ("auto", *_TRANSFORMS):
            raise ValueError(
                f"transform must be 'auto', 'relative' or 'log'; got {self.transform!r}"
            )
        x = check_array(feature_matrix(X), dtype=np.float64)
        y = check_array(Y, dtype=np.float64, ensure_all_finite="allow-nan", ensure_2d=True)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"X has {x.shape[0]} rows but Y has {y.shape[0]}")
        if y.shape[1] < 2:
            raise ValueError(
                f"meta-training needs at least 2 devices (Y columns); got {y.shape[1]}"
            )
        measured = np.isfinite(y)
        if (measured.sum(axis=0) < 2).any():
            raise ValueError("every device (Y column) needs at least 2 measured rows")
        if (y[measured] <= 0).any():
            raise ValueError("latencies must be > 0")
        self.n_features_in_ = x.shape[1]
        self.n_devices_ = y.shape[1]
        self.x_mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.x_std_ = np.where(std > 1e-12, std, 1.0)
        xs = (x - self.x_mean_) / self.x_std_
        mlp = None
        if self.embedding == "mlp":
            from cosearch.predictors._embed import train_embedding

            rel = y / np.array([y[measured[:, j], j].mean() for j in range(y.shape[1])])
            mlp = train_embedding(
                xs,
                rel,
                hidden=self.hidden,
                embed_dim=self.embed_dim,
                epochs=self.epochs,
                seed=self.random_state,
            )
        self.embed_state_ = mlp
        phi = self._phi_std(xs)
        candidates = _TRANSFORMS if self.transform == "auto" else (self.transform,)
        best: tuple[float, str, float, float, dict[tuple[float, float], float]] | None = None
        self.transform_scores_ = {}
        for name in candidates:
            scale, target = _normalize(y, measured, name)
            coef = _heads(phi, target, measured)
            shrink, noise, scores = self._choose(phi, target, measured, coef, len(candidates))
            score = max(scores.values()) if scores else 0.0
            if len(candidates) > 1:
                self.transform_scores_[name] = score
            if best is None or score > best[0]:  # first of equals: relative
                best = (score, name, shrink, noise, scores)
                self.scale_, self.coef_ = scale, coef
        assert best is not None
        _, name, shrink, noise, scores = best
        if name == "log":
            import torch

            self.embed_state_ = {**(mlp or {}), _LOG_KEY: torch.ones(1, dtype=torch.float64)}
        self.prior_mean_ = self.coef_.mean(axis=0)
        centred = self.coef_ - self.prior_mean_
        cov = centred.T @ centred / max(1, self.n_devices_ - 1)
        self.shrinkage_ = shrink
        self.noise_ = noise
        self.meta_scores_ = scores
        self.prior_cov_ = _shrunk(cov, shrink)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        self.components_ = vt[: max(1, self.n_devices_ - 1)].T
        return self

    @property
    def transform_(self) -> str:
        """The per-device normalization in use: ``"relative"`` or ``"log"``."""
        check_is_fitted(self, "coef_")
        state = self.embed_state_ or {}
        return "log" if _LOG_KEY in state else "relative"

    def _phi_std(self, xs: np.ndarray) -> np.ndarray:
        parts = [np.ones((xs.shape[0], 1)), xs]
        body = {k: v for k, v in (self.embed_state_ or {}).items() if k != _LOG_KEY}
        if body:
            from cosearch.predictors._embed import embed

            parts.append(embed(body, xs, self.hidden, self.embed_dim))
        return np.hstack(parts)

    def features(self, X: Any) -> np.ndarray:
        """The shared features ``phi(X)`` (``n x P``) the device heads act on."""
        check_is_fitted(self)
        x = check_array(feature_matrix(X), dtype=np.float64)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features; the predictor was fitted on {self.n_features_in_}"
            )
        return self._phi_std((x - self.x_mean_) / self.x_std_)

    def _choose(
        self,
        phi: np.ndarray,
        rel: np.ndarray,
        measured: np.ndarray,
        coef: np.ndarray,
        n_transforms: int = 1,
    ) -> tuple[float, float, dict[tuple[float, float], float]]:
        """(shrinkage, noise, scores) by leave-one-device-out episodes (see the module
        docstring) on the normalized latencies ``rel`` and their heads ``coef``. The episodes
        (shot draws) are the same for every transform, so their scores compare."""
        shrinks = _SHRINKAGE_GRID if self.shrinkage is None else (float(self.shrinkage),)
        noises = _NOISE_GRID if self.noise is None else (float(self.noise),)
        if len(shrinks) == 1 and len(noises) == 1 and n_transforms == 1:
            return shrinks[0], noises[0], {}
        rng = np.random.default_rng(self.random_state)
        totals = {(s, n): 0.0 for s in shrinks for n in noises}
        count = 0
        for d in range(self.n_devices_):
            rows = np.flatnonzero(measured[:, d])
            if len(rows) <= self.shots + 1:
                continue
            others = np.delete(coef, d, axis=0)
            mu = others.mean(axis=0)
            centred = others - mu
            cov = centred.T @ centred / max(1, len(others) - 1)
            for _ in range(self.meta_episodes):
                shots = rng.choice(rows, self.shots, replace=False)
                rest = np.setdiff1d(rows, shots)
                if len(rest) > _META_ROWS:
                    rest = rng.choice(rest, _META_ROWS, replace=False)
                truth = rankdata(rel[rest, d])
                for s in shrinks:
                    sigma = _shrunk(cov, s)
                    for n in noises:
                        w, _, _ = _posterior(phi[shots], rel[shots, d], mu, sigma, n)
                        totals[(s, n)] += _rank_corr(truth, phi[rest] @ w)
                count += 1
        scores = {k: v / max(1, count) for k, v in totals.items()}
        best = max(scores, key=lambda k: scores[k])  # first of equals: the grid order
        return best[0], best[1], scores

    def predict(self, X: Any) -> np.ndarray:
        """Latencies (ms, ``n x M``) of ``X`` on the meta-training devices."""
        check_is_fitted(self)
        out = self.features(X) @ self.coef_.T
        return (np.exp(out) if self.transform_ == "log" else out) * self.scale_

    # -- adaptation --------------------------------------------------------------------------------
    def adapt(self, X: Any, y: Any) -> AdaptedLatencyPredictor:
        """A predictor for a new device from its measured latencies ``y`` (ms, ``K >= 1``
        positive values) of the architectures ``X``. Raises NotFittedError before ``fit``."""
        check_is_fitted(self)
        return AdaptedLatencyPredictor(meta=self).fit(X, y)

    def device_embedding(self, X: Any, y: Any) -> np.ndarray:
        """The hardware embedding of a device from the latencies ``y`` of reference
        architectures ``X``: its posterior head, minus the prior mean, in the prior's principal
        directions (``n_devices_ - 1`` numbers)."""
        return self.adapt(X, y).embedding_


class AdaptedLatencyPredictor(PredictorBase):
    """The latency predictor of one device: the posterior of a meta-trained prior.

    ``meta`` is a fitted :class:`FewShotLatencyPredictor` (kept, not copied). ``fit(X, y)``
    takes the device's K measured architectures and latencies (ms, > 0). ``predict(X)`` gives
    ms; ``predict(X, return_std=True)`` also the posterior predictive standard deviation (ms).

    Learned: ``coef_`` (posterior mean head), ``posterior_cov_``, ``scale_`` (ms per relative
    unit; under the log transform ``exp`` of the log offset, so ``predict`` is
    ``exp(phi @ coef_) * scale_``), ``embedding_`` (the hardware embedding),
    ``n_features_in_``.
    """

    def __init__(self, meta: FewShotLatencyPredictor | None = None) -> None:
        self.meta = meta

    def __sklearn_clone__(self) -> AdaptedLatencyPredictor:
        # scikit-learn's clone would also clone ``meta`` into an unfitted one; the meta-trained
        # prior is what this estimator adapts, not something a refit should redo (so
        # ``cross_val_score`` adapts it on each fold's shots)
        return type(self)(meta=self.meta)

    def fit(self, X: Any, y: Any) -> AdaptedLatencyPredictor:
        """Condition the prior on ``(X, y)``; returns ``self``. Raises ValueError when ``meta``
        is missing, ``y`` has a non-positive value or lengths differ; NotFittedError when
        ``meta`` is not meta-trained."""
        if self.meta is None:
            raise ValueError("AdaptedLatencyPredictor needs a meta-trained FewShotLatencyPredictor")
        check_is_fitted(self.meta)
        phi = self.meta.features(X)
        target = np.asarray(y, dtype=np.float64).ravel()
        if target.shape[0] != phi.shape[0]:
            raise ValueError(f"X has {phi.shape[0]} rows but y has {target.shape[0]}")
        if not np.all(np.isfinite(target)) or (target <= 0).any():
            raise ValueError("latencies must be finite and > 0")
        meta = self.meta
        # The device's level against the prior's mean device on the same architectures (not
        # the shots' own mean, which depends on which architectures were drawn): a ratio of
        # means in relative units, a difference of mean logs under the log transform.
        prior_pred = phi @ meta.prior_mean_
        if meta.transform_ == "log":
            offset = float(np.log(target).mean() - prior_pred.mean())
            self.scale_ = float(np.exp(offset))
            normalized = np.log(target) - offset
        else:
            base = float(prior_pred.mean())
            self.scale_ = float(target.mean() / base) if base > 1e-9 else float(target.mean())
            normalized = target / self.scale_
        w, cov, _ = _posterior(phi, normalized, meta.prior_mean_, meta.prior_cov_, meta.noise_)
        self.coef_ = w
        self.posterior_cov_ = cov
        self.embedding_ = (w - meta.prior_mean_) @ meta.components_
        self.n_features_in_ = meta.n_features_in_
        return self

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Latencies (ms, ``(n,)``); with ``return_std=True`` a pair ``(mean, std)``. Under the
        log transform the prediction is the posterior median ``exp(mean log)`` and ``std`` the
        standard deviation of the log-normal with that median."""
        check_is_fitted(self)
        meta: FewShotLatencyPredictor = self.meta  # type: ignore[assignment]
        phi = meta.features(X)
        center = phi @ self.coef_
        log = meta.transform_ == "log"
        mean = (np.exp(center) if log else center) * self.scale_
        if not return_std:
            return mean
        var = np.einsum("ij,jk,ik->i", phi, self.posterior_cov_, phi) + meta.noise_
        var = np.maximum(var, 0.0)
        if log:
            return mean, mean * np.sqrt(np.expm1(var) * np.exp(var))
        return mean, np.sqrt(var) * self.scale_


def _heads(phi: np.ndarray, rel: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """One ridge head per device (``M x P``) on its measured rows; the intercept (column 0) is
    not penalized. Devices measured on the same rows share one factorization."""
    out = np.zeros((rel.shape[1], phi.shape[1]))
    patterns: dict[bytes, list[int]] = {}
    for j in range(rel.shape[1]):
        patterns.setdefault(np.packbits(measured[:, j]).tobytes(), []).append(j)
    for cols in patterns.values():
        rows = measured[:, cols[0]]
        sub = phi[rows]
        penalty = _HEAD_RIDGE * len(sub) * np.ones(phi.shape[1])
        penalty[0] = 0.0
        gram = sub.T @ sub + np.diag(penalty)
        out[cols] = np.linalg.solve(gram, sub.T @ rel[rows][:, cols]).T
    return out


def _normalize(
    y: np.ndarray, measured: np.ndarray, transform: str
) -> tuple[np.ndarray, np.ndarray]:
    """(per-device scale in ms, normalized latencies) under ``transform`` (NaN stays NaN)."""
    cols = range(y.shape[1])
    if transform == "log":
        logs = np.log(np.where(measured, y, 1.0))
        centre = np.array([logs[measured[:, j], j].mean() for j in cols])
        return np.exp(centre), np.where(measured, logs - centre, np.nan)
    scale = np.array([y[measured[:, j], j].mean() for j in cols])
    return scale, y / scale


def _rank_corr(truth_ranks: np.ndarray, pred: np.ndarray) -> float:
    """Spearman's rho given the truth's (average) ranks: Pearson's r of the ranks."""
    a = truth_ranks - truth_ranks.mean()
    if np.ptp(pred) == 0 or not a.any():
        return 0.0
    b = rankdata(pred)
    b = b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _shrunk(cov: np.ndarray, shrinkage: float) -> np.ndarray:
    level = np.trace(cov) / cov.shape[0]
    return cov + shrinkage * level * np.eye(cov.shape[0])


def _posterior(
    phi: np.ndarray, y: np.ndarray, mu: np.ndarray, sigma: np.ndarray, noise: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian posterior of ``w`` under ``y = phi @ w + eps``, ``w ~ N(mu, sigma)``,
    ``eps ~ N(0, noise)``: mean, covariance, and the shots' residuals under the prior."""
    s_phi = sigma @ phi.T  # P x K
    gram = phi @ s_phi + noise * np.eye(phi.shape[0])
    resid = y - phi @ mu
    gain = np.linalg.solve(gram, s_phi.T).T  # P x K
    return mu + gain @ resid, sigma - gain @ s_phi.T, resid
