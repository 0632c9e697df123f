"""The computations behind ``cosearch predictor fewshot-eval`` and ``cosearch predictor eval``.

Both read a benchmark table (:func:`~cosearch.predictors.tables.load_table`), draw rows with
``numpy.random.default_rng(seed)`` for each seed, fit, and score on every other row of the
table that has a value in the target column: Spearman's rho and Kendall's tau-b of predicted
vs. true values. ``seeds=S`` means the seeds ``0, 1, ..., S-1``; a sequence of ints names them.
``seconds`` is the wall-clock time of the whole call (reading the table included).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cosearch.errors import ConfigError
from cosearch.predictors._base import kendall, spearman
from cosearch.predictors.tables import Table, load_table

__all__ = ["fewshot_eval", "plain_eval", "adaptation_scores", "PLAIN_MODELS", "seed_list"]

#: the predictors :func:`plain_eval` can train: ``auto`` picks ``gbrt`` for a ``lat_*`` column
#: and ``ensemble`` for any other (an accuracy); ``ensemble`` and ``gp`` are the accuracy
#: predictors with uncertainty, on the encoding ``cosearch predictor train`` gives them
#: (``paths`` on nb201)
PLAIN_MODELS: tuple[str, ...] = ("auto", "gbrt", "ensemble", "gp")


def seed_list(seeds: int | Sequence[int]) -> list[int]:
    """``range(seeds)`` for an int >= 1, else the given ints. Raises ConfigError otherwise."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if not 1 <= seeds <= 10_000:
            raise ConfigError(f"seeds must be an int in [1, 10000]; got {seeds}", key="seeds")
        return list(range(int(seeds)))
    if isinstance(seeds, Sequence) and not isinstance(seeds, str) and len(seeds) > 0:
        if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds):
            return [int(s) for s in seeds]
    raise ConfigError(
        f"seeds must be an int >= 1 or a non-empty list of ints; got {seeds!r}", key="seeds"
    )


def _table(table: str | Path | Table, space: str) -> Table:
    if isinstance(table, Table):
        if table.space != space:
            raise ConfigError(
                f"table {table.path} was read for space {table.space!r}, not {space!r}",
                key="space",
            )
        return table
    return load_table(table, space)


def _count(value: Any, name: str, available: int, low: int = 1) -> int:
    """``value`` rows to train on, leaving at least two to score (one has no rank
    correlation: it printed a Spearman of 0.0 as a result)."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or not low <= int(value) <= available - 2:
        raise ConfigError(
            f"The {name!r} argument must be an int in [{low}, {available - 2}] (the table has "
            f"{available} rows with the target, and at least 2 must be left to score); got "
            f"{value!r} instead.",
            key=name,
        )
    return int(value)


def _draw(rows: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    chosen = np.sort(np.random.default_rng(seed).choice(rows, k, replace=False))
    return chosen, np.setdiff1d(rows, chosen)


def adaptation_scores(
    meta: Any, table: Table, target: str, shots: int, seeds: Sequence[int]
) -> tuple[list[float], list[float]]:
    """Spearman and Kendall per seed of ``meta.adapt`` on ``shots`` rows of ``target`` drawn
    with each seed, scored on the table's other rows with a target value. ``meta`` is a
    fitted :class:`~cosearch.predictors.fewshot.FewShotLatencyPredictor`."""
    y = table.column(target)
    rows = np.flatnonzero(np.isfinite(y))
    rhos, taus = [], []
    for seed in seeds:
        shot, rest = _draw(rows, shots, seed)
        pred = meta.adapt(table.features[shot], y[shot]).predict(table.features[rest])
        rhos.append(spearman(y[rest], pred))
        taus.append(kendall(y[rest], pred))
    return rhos, taus


def fewshot_eval(
    table_csv: str | Path | Table,
    space: str,
    target: str,
    shots: int,
    seeds: int | Sequence[int] = 5,
    exclude: Sequence[str] = (),
    *,
    predictor_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Few-shot latency transfer to the device ``target`` (a column of the table).

    Meta-trains a :class:`~cosearch.predictors.fewshot.FewShotLatencyPredictor` (parameters
    ``predictor_params``; ``random_state`` 0 unless given, so the seeds vary only the shots)
    on every ``lat_*`` column except ``target`` and ``exclude``, over all rows; then for each
    seed adapts it to ``target`` from ``shots`` rows drawn with that seed and scores it on all
    remaining rows. Returns exactly ``{"target", "shots", "spearman_mean",
    "spearman_per_seed", "kendall_mean", "seconds"}``.

    Raises ConfigError when the space has no table reader, the target or an excluded column
    is not in the table, fewer than 2 devices remain to meta-train on, a target value is not
    positive, or ``shots`` / ``seeds`` are out of range.
    """
    from cosearch.predictors.fewshot import FewShotLatencyPredictor

    start = time.perf_counter()
    data = _table(table_csv, space)
    y = data.column(target)
    for name in exclude:
        data.column(name)  # raises ConfigError naming the valid columns
    rows = np.flatnonzero(np.isfinite(y))
    shots = _count(shots, "shots", len(rows))
    seed_values = seed_list(seeds)
    if (y[rows] <= 0).any():
        raise ConfigError(f"target column {target!r} has values <= 0; latencies must be > 0")
    meta_columns = [c for c in data.latency_columns if c != target and c not in set(exclude)]
    if len(meta_columns) < 2:
        raise ConfigError(
            f"few-shot evaluation needs at least 2 other lat_* columns to meta-train on; "
            f"{len(meta_columns)} remain after excluding {target!r} and {list(exclude)}",
            key="exclude",
        )
    params = {"random_state": 0, **(predictor_params or {})}
    meta = FewShotLatencyPredictor(**params).fit(data.features, data.latencies(meta_columns))
    rhos, taus = adaptation_scores(meta, data, target, shots, seed_values)
    return {
        "target": target,
        "shots": shots,
        "spearman_mean": float(np.mean(rhos)),
        "spearman_per_seed": rhos,
        "kendall_mean": float(np.mean(taus)),
        "seconds": round(time.perf_counter() - start, 3),
    }


def plain_eval(
    table_csv: str | Path | Table,
    space: str,
    target: str,
    train: int,
    seeds: int | Sequence[int] = 5,
    *,
    model: str = "auto",
) -> dict[str, Any]:
    """A plain predictor (``model``, one of :data:`PLAIN_MODELS`; by default gradient-boosted
    trees on the table encoding for a ``lat_*`` column and the bootstrap ensemble of the
    accuracy predictors for any other column) trained on ``train`` rows of ``target`` drawn
    with each seed, scored on all remaining rows with a target value.

    ``target`` is any numeric column (a latency or an accuracy). Returns
    ``{"target", "model", "shots", "train", "spearman_mean", "spearman_per_seed",
    "kendall_mean", "seconds"}``, where ``model`` is the predictor used and ``shots`` and
    ``train`` both hold the number of training rows (the few-shot keys, so both commands print
    the same fields). Raises ConfigError as :func:`fewshot_eval` does, and for an unknown
    ``model``.
    """
    from cosearch.predictors._training import default_encoding, make_estimator

    start = time.perf_counter()
    if model not in PLAIN_MODELS:
        raise ConfigError(
            f"unknown plain predictor {model!r}; valid: {', '.join(PLAIN_MODELS)}", key="model"
        )
    data = _table(table_csv, space)
    y = data.column(target)
    if model == "auto":
        model = "gbrt" if target in data.latency_columns else "ensemble"
    x = data.features
    if default_encoding(model, space, from_table=True) == "paths":
        from cosearch.predictors._encodings import encode_genotypes_as

        x = encode_genotypes_as("paths", space, data.genotypes)
    rows = np.flatnonzero(np.isfinite(y))
    train = _count(train, "train", len(rows), low=2)
    rhos, taus = [], []
    for seed in seed_list(seeds):
        fit_rows, rest = _draw(rows, train, seed)
        est = make_estimator(model, seed, y[rows]).fit(x[fit_rows], y[fit_rows])
        pred = est.predict(x[rest])
        rhos.append(spearman(y[rest], pred))
        taus.append(kendall(y[rest], pred))
    return {
        "target": target,
        "model": model,
        "shots": train,
        "train": train,
        "spearman_mean": float(np.mean(rhos)),
        "spearman_per_seed": rhos,
        "kendall_mean": float(np.mean(taus)),
        "seconds": round(time.perf_counter() - start, 3),
    }
