"""Evaluator: (Architecture, Accelerator) -> Metrics, every value with its source.

Sources are short strings (DESIGN.md section 3): ``benchmark:nb201/cifar10`` for a published
table, ``analytical:systolic/v1`` for a cost model, ``measured:...`` for a real device,
``predictor:<id>`` for a predictor stored in the store's ``predictors`` table,
``train:<dataset>/<N>ep`` for a candidate trained from scratch (:mod:`cosearch._trained`), and
``supernet:...`` from a weight-sharing strategy.

Benchmark latency: ``latency="benchmark:nb201/<device>"`` replaces ``latency_ms`` of nb201
candidates with the published measurement of that cell on ``<device>`` (fidelity 1.0; the other
cost metrics still come from ``cost``). Devices: :data:`NB201_LATENCY_DEVICES`, from the table
``spaces/data/nb201_latency.csv.gz`` (HW-NAS-Bench, Li et al., ICLR 2021; HELP, Lee et al.,
NeurIPS 2021). Like the accuracy table it applies only to the default nb201 network, and the
lookup is by the exact arch string.

Predictor sources: ``accuracy="predictor:<id>"`` predicts ``accuracy`` from the candidate's
architecture (plus ``accuracy_std``, its predictive standard deviation, when the predictor has
uncertainty); ``latency="predictor:<id>"`` replaces ``latency_ms`` (the other cost metrics
still come from ``cost``; the predictor knows one device and ignores the accelerator; with a
``measured:`` cost the network is then not timed at all, since latency is all it measures). Their
fidelity is below 1: the predictor's held-out Spearman clipped to [0.01, 0.99], or 0.5 without
scores (:attr:`cosearch.predictors.persist.StoredPredictor.fidelity`). Predictors load from
``store`` (given to the Evaluator or set as its ``store`` attribute) on first use.
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from cosearch.errors import ConfigError
from cosearch.hwmodels import Accelerator, Cost, Layer, get_cost_model
from cosearch.spaces import Architecture, HardwareSpace, NetworkSpace

if TYPE_CHECKING:
    from cosearch._trained import TrainedAccuracy
    from cosearch.store import Store
    from cosearch.store.layer_cache import LayerCostCache

__all__ = ["Measurement", "Metrics", "Evaluation", "Evaluator", "NB201_LATENCY_DEVICES"]

_ACCURACY_KINDS = ("benchmark", "predictor", "train")
_COST_KINDS = ("analytical", "measured")
_LATENCY_KINDS = ("predictor", "benchmark")
#: devices of ``latency = "benchmark:nb201/<device>"`` (columns of nb201_latency.csv.gz)
NB201_LATENCY_DEVICES = ("pixel3", "1080ti_1")


@dataclass(frozen=True)
class Measurement:
    """One metric value and where it came from.

    ``fidelity`` is in (0, 1]: 1.0 for the metric's reference source (a benchmark's final
    accuracy, a calibrated cost model), less for cheaper proxies. ``seconds`` is the wall time
    spent producing the value.
    """

    value: float
    source: str
    fidelity: float = 1.0
    seconds: float = 0.0


class Metrics(Mapping[str, Measurement]):
    """An ordered, read-only mapping of metric name -> :class:`Measurement`."""

    def __init__(self, items: Mapping[str, Measurement]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> Measurement:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def values_of(self, names: list[str]) -> list[float]:
        return [self._items[n].value for n in names]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={m.value:g} [{m.source}]" for k, m in self._items.items())
        return f"Metrics({inner})"


@dataclass(frozen=True)
class Evaluation:
    """What :meth:`Evaluator.evaluate` gives: the metrics, the cost model's :class:`Cost`,
    and ``notes`` for the trial's user attributes (a trained candidate's ``learning_curve``,
    and ``stopped_at_epoch`` when its training was stopped early)."""

    metrics: Metrics
    cost: Cost
    notes: Mapping[str, Any] = field(default_factory=dict)


#: ``early_stop(metrics so far, epoch, test accuracy after it) -> stop?``: see
#: :meth:`Evaluator.evaluate`
EarlyStop = Callable[[Mapping[str, "Measurement"], int, float], bool]


def _split_source(source: str, key: str, kinds: tuple[str, ...]) -> tuple[str, str]:
    kind, sep, rest = source.partition(":")
    if not sep or not rest:
        raise ConfigError(
            f"source {source!r} must look like '<kind>:<what>' with kind one of {', '.join(kinds)}",
            key=key,
        )
    if kind not in kinds:
        raise ConfigError(
            f"source kind {kind!r} of {source!r} is not available for {key}; "
            f"valid kinds: {', '.join(kinds)}",
            key=key,
        )
    return kind, rest


class Evaluator:
    """Scores candidates for one campaign. Layers are extracted once per architecture digest."""

    def __init__(
        self,
        network: NetworkSpace,
        hardware: HardwareSpace,
        *,
        accuracy: str | None,
        cost: str,
        latency: str | None = None,
        layer_cache_layers: int = 50_000,
        cost_cache: LayerCostCache | None = None,
        store: Store | None = None,
        seed: int = 0,
        trusted: bool = True,
    ) -> None:
        """``seed`` and ``trusted`` matter to a ``train:`` accuracy source only: the campaign
        seed, and whether the dataset spec came from the user rather than a store
        (:class:`cosearch._trained.TrainedAccuracy`)."""
        self.network = network
        self.hardware = hardware
        self.accuracy_source = accuracy
        self.latency_source = latency
        self.store = store
        self._accuracy_table: str | None = None
        self._accuracy_predictor: str | None = None
        self._trained: TrainedAccuracy | None = None
        self._latency_predictor: str | None = None
        self._latency_device: str | None = None
        self._predictors: dict[str, Any] = {}
        if latency is not None:
            kind, what = _split_source(latency, "latency", _LATENCY_KINDS)
            if kind == "predictor":
                self._latency_predictor = what
            else:
                self._latency_device = _check_latency_table(latency, what, network)
                named = getattr(hardware, "device_name", None)
                if hardware.name == "device" and named is not None:
                    from cosearch.hwmodels.measured import DEFAULT_DEVICE, canonical_device

                    # the default device (its trials carry no name) takes any table
                    mine = canonical_device(self._latency_device)
                    if named not in (DEFAULT_DEVICE, mine):
                        raise ConfigError(
                            f"latency source {latency!r} is the table of device "
                            f"{self._latency_device!r}, but the hardware space is device "
                            f"{named!r}: its trials would carry another device's latency",
                            key="latency",
                        )
        if accuracy is not None and accuracy.startswith("predictor:"):
            _, self._accuracy_predictor = _split_source(accuracy, "accuracy", _ACCURACY_KINDS)
        elif accuracy is not None and accuracy.startswith("train:"):
            from cosearch._trained import TrainedAccuracy, parse_train_source

            dataset, epochs = parse_train_source(accuracy)
            self._trained = TrainedAccuracy(network, dataset, epochs, seed=seed, trusted=trusted)
        elif accuracy is not None:
            _, table = _split_source(accuracy, "accuracy", _ACCURACY_KINDS)
            if table not in network.benchmarks:
                valid = ", ".join(f"benchmark:{b}" for b in network.benchmarks) or "(none)"
                raise ConfigError(
                    f"accuracy source {accuracy!r} does not apply to network "
                    f"space {network.name!r}; valid: {valid}",
                    key="accuracy",
                )
            network.check_benchmark(table)
            self._accuracy_table = table
        kind, what = _split_source(cost, "cost", _COST_KINDS)
        self.measured = kind == "measured"
        if self.measured:
            # measured:DEVICE times whole models on a real device of the `device` space
            model_name, version = "measured", ""
            if hardware.name != "device":
                raise ConfigError(
                    f"cost source {cost!r} measures a real device: the hardware space must "
                    f"be 'device' (got {hardware.name!r})",
                    key="cost",
                )
            device = getattr(hardware, "device_name", None)
            if device is not None and what != device:
                raise ConfigError(
                    f"cost source {cost!r} names device {what!r} but the hardware space is "
                    f"device {device!r}",
                    key="cost",
                )
        else:
            model_name, _, version = what.partition("/")
            if model_name == "measured":
                raise ConfigError(
                    f"cost source {cost!r}: the measured model times a real device; write "
                    "'measured:DEVICE' (e.g. 'measured:cpu') with hardware = 'device'",
                    key="cost",
                )
        self.cost_model = get_cost_model_checked(model_name)
        timed = self._latency_predictor is None and self._latency_device is None
        device = getattr(hardware, "device_name", None)
        if self.measured and timed and device is not None:
            from cosearch.hwmodels.measured import MeasuredCostModel

            if isinstance(self.cost_model, MeasuredCostModel):
                self.cost_model.provider(device)  # fail now, not at the first trial
        if version and self.cost_model.source != f"analytical:{what}":
            raise ConfigError(
                f"cost source {cost!r} names a version this cosearch does not have; its "
                f"{model_name} model is {self.cost_model.source!r} (or write "
                f"'analytical:{model_name}')",
                key="cost",
            )
        if self.cost_model.templates and hardware.name not in self.cost_model.templates:
            raise ConfigError(
                f"cost model {model_name!r} cannot price hardware space "
                f"{hardware.name!r}; it takes {', '.join(self.cost_model.templates)}",
                key="cost",
            )
        self.cost_cache = cost_cache
        # the layers of recently seen architectures (a joint search prices one network on
        # many accelerators), at most ``layer_cache_layers`` layers in all: about 320 bytes
        # a layer, so 16 MB by default. Capped by architectures (4,096), a long nb201
        # campaign kept 260 MB of them; extracting a network again costs about 6 ms
        self._layers: OrderedDict[str, list[Layer]] = OrderedDict()
        self._layer_cache_layers = layer_cache_layers
        self._layers_held = 0
        if store is not None:  # fail now, not at the first trial, on a missing predictor
            for pid in (self._accuracy_predictor, self._latency_predictor):
                if pid is not None:
                    self.predictor(pid)

    @property
    def cost_source(self) -> str:
        """What prices the candidates' costs, as recorded in a campaign's attributes: the
        cost model's source; for a ``measured:`` cost, the device that times them, or
        ``analytical:onnx`` (MACs only) when a table or predictor gives the latency instead."""
        if not self.measured:
            return str(self.cost_model.source)
        if self._latency_predictor is not None or self._latency_device is not None:
            return "analytical:onnx"
        from cosearch.hwmodels.measured import DEFAULT_DEVICE, MeasuredCostModel

        device = getattr(self.hardware, "device_name", None) or DEFAULT_DEVICE
        return MeasuredCostModel.source_for(device)

    @property
    def trained(self) -> TrainedAccuracy | None:
        """The ``train:`` accuracy source, or None."""
        return self._trained

    def model_versions(self) -> dict[str, str]:
        """What exactly produces the metrics, where a later cosearch or a retrained predictor
        could give other numbers under the same source name: the cost model's source with its
        version (for a timed device, with the machine that times it), and each stored
        predictor's creation time (``--replace`` makes a new one)."""
        out = {"cost": self.cost_source}
        if self._trained is not None:
            from cosearch._trained import RECIPE_VERSION

            out["train"] = f"{self._trained.source} recipe {RECIPE_VERSION}"
        if out["cost"].startswith("measured:"):  # timings are only comparable on one machine
            device = getattr(self.hardware, "device_name", None) or "cpu"
            out["cost"] += f" on {self.cost_model.machine(device)}"
        if self.store is not None:
            for pid in (self._accuracy_predictor, self._latency_predictor):
                if pid is not None:
                    made = self.predictor(pid).created_at
                    out[f"predictor:{pid}"] = "" if made is None else made.isoformat()
        return out

    def predictor(self, predictor_id: str) -> Any:
        """The stored predictor ``predictor_id`` (a ``StoredPredictor``), loaded once.

        Raises ConfigError without a store; StoreInputError when the store lacks it."""
        found = self._predictors.get(predictor_id)
        if found is None:
            if self.store is None:
                raise ConfigError(
                    f"source 'predictor:{predictor_id}' needs a store to load the predictor "
                    "from; pass store= to the Evaluator",
                    key="accuracy" if predictor_id == self._accuracy_predictor else "latency",
                )
            from cosearch.predictors.persist import load_predictor

            found = load_predictor(self.store, predictor_id)
            role = "accuracy" if predictor_id == self._accuracy_predictor else "latency"
            _check_predictor_fits(found, role, self.network)
            self._predictors[predictor_id] = found
        return found

    def _predicted(self, predictor_id: str, arch: Architecture) -> tuple[float, float | None]:
        """(value, std or None) of the stored predictor for ``arch``."""
        p = self.predictor(predictor_id)
        if p.has_std:
            mean, std = p.predict([arch], return_std=True)
            return float(mean[0]), float(std[0])
        return float(p.predict([arch])[0]), None

    def metric_names(self) -> list[str]:
        """The metrics :meth:`evaluate` records. ``accuracy_std`` comes with an accuracy
        predictor that gives one (``gp``, ``ensemble``); without a store to look at the
        predictor (config validation), it is assumed to."""
        has_accuracy = self._accuracy_table or self._accuracy_predictor or self._trained
        names = ["accuracy"] if has_accuracy else []
        if self._accuracy_predictor is not None and (
            self.store is None or self.predictor(self._accuracy_predictor).has_std
        ):
            names.append("accuracy_std")
        if self.measured:
            timed = self._latency_predictor is None and self._latency_device is None
            return names + ["latency_ms"] + (["latency_spread_ms"] if timed else []) + ["macs"]
        return names + list(Cost.METRICS) + ["macs"]

    def layers(self, arch: Architecture) -> list[Layer]:
        layers = self._layers.get(arch.digest)
        if layers is None:
            from cosearch.hwmodels.layers import extract_layers

            layers = extract_layers(arch.onnx())
            self._layers[arch.digest] = layers
            self._layers_held += len(layers)
            while self._layers_held > self._layer_cache_layers and len(self._layers) > 1:
                self._layers_held -= len(self._layers.popitem(last=False)[1])
        else:
            self._layers.move_to_end(arch.digest)
        return layers

    def evaluate(
        self,
        arch: Architecture,
        acc: Accelerator,
        *,
        given: Mapping[str, Measurement] | None = None,
        early_stop: EarlyStop | None = None,
    ) -> Evaluation:
        """Metrics of ``(arch, acc)``. ``given`` metrics (measured by a weight-sharing
        strategy, e.g. supernet accuracy) are taken as they are and not recomputed.

        With a ``train:`` accuracy source the costs are computed first, and ``early_stop`` is
        asked after every epoch but the last whether to stop training there; a stopped
        candidate's accuracy is that epoch's, with fidelity ``epochs trained / epochs``."""
        ev = self._evaluate(arch, acc, dict(given or {}))
        if self._trained is None or "accuracy" in ev.metrics:
            return ev
        t0 = time.perf_counter()
        stop = None
        if early_stop is not None:
            costs = dict(ev.metrics)

            def stop(epoch: int, accuracy: float) -> bool:
                return early_stop(costs, epoch, accuracy)

        run = self._trained(arch, stop)
        fidelity = self._trained.fidelity * run.epochs / self._trained.epochs
        seconds = time.perf_counter() - t0
        measured = Measurement(run.accuracy, self._trained.source, fidelity, seconds)
        notes: dict[str, Any] = {}
        if run.curve:
            notes["learning_curve"] = list(run.curve)
        if run.epochs < self._trained.epochs:
            notes["stopped_at_epoch"] = run.epochs
        return Evaluation(Metrics({"accuracy": measured, **ev.metrics}), ev.cost, notes)

    def _evaluate(
        self, arch: Architecture, acc: Accelerator, out: dict[str, Measurement]
    ) -> Evaluation:
        if self._accuracy_table is not None and "accuracy" not in out:
            t0 = time.perf_counter()
            value = self.network.benchmark_accuracy(arch.genotype, self._accuracy_table)
            out["accuracy"] = Measurement(
                value, f"benchmark:{self._accuracy_table}", 1.0, time.perf_counter() - t0
            )
        if self._accuracy_predictor is not None and "accuracy" not in out:
            t0 = time.perf_counter()
            value, std = self._predicted(self._accuracy_predictor, arch)
            p = self.predictor(self._accuracy_predictor)
            out["accuracy"] = Measurement(value, p.source, p.fidelity, time.perf_counter() - t0)
            if std is not None:
                out["accuracy_std"] = Measurement(std, p.source, p.fidelity, 0.0)
        if self._latency_predictor is not None and "latency_ms" not in out:
            t0 = time.perf_counter()
            value, _ = self._predicted(self._latency_predictor, arch)
            p = self.predictor(self._latency_predictor)
            out["latency_ms"] = Measurement(value, p.source, p.fidelity, time.perf_counter() - t0)
        if self._latency_device is not None and "latency_ms" not in out:
            t0 = time.perf_counter()
            value = _nb201_latency(self.network.to_string(arch.genotype), self._latency_device)
            out["latency_ms"] = Measurement(
                value, f"benchmark:nb201/{self._latency_device}", 1.0, time.perf_counter() - t0
            )
        t0 = time.perf_counter()
        layers = self.layers(arch)
        macs = float(sum(layer.macs for layer in layers))
        if self.measured:
            # a measured device gives latency only: when a predictor, a table or the strategy
            # already gave it, timing the network as well would cost time and add nothing
            if "latency_ms" not in out:
                m = self.cost_model.measure(arch.onnx(), acc)
                seconds = time.perf_counter() - t0
                src = self.cost_model.source_for(m.device)
                out["latency_ms"] = Measurement(m.latency_ms, src, 1.0, seconds)
                out.setdefault("latency_spread_ms", Measurement(m.iqr_ms, src, 1.0, 0.0))
            out.setdefault("macs", Measurement(macs, "analytical:onnx", 1.0, 0.0))
            latency = out["latency_ms"].value
            cost = Cost(0.0, 0.0, latency, 0.0, 0.0, 0.0, 0.0, 0.0, int(macs))
            return Evaluation(Metrics(out), cost)
        if self.cost_cache is not None:
            cost = self.cost_cache.evaluate(self.cost_model, layers, acc)
        else:
            cost = self.cost_model.evaluate(layers, acc)
        seconds = time.perf_counter() - t0
        src = self.cost_model.source
        for name, value in cost.metrics().items():
            out.setdefault(name, Measurement(value, src, 1.0, seconds))
        out.setdefault("macs", Measurement(float(cost.macs), src, 1.0, 0.0))
        return Evaluation(Metrics(out), cost)


def get_cost_model_checked(name: str):  # noqa: ANN201 - returns a CostModel
    try:
        return get_cost_model(name)
    except ConfigError as exc:
        raise ConfigError(str(exc.args[0]), key="cost") from exc


def _check_predictor_fits(found: Any, role: str, network: NetworkSpace) -> None:
    """Raise ConfigError unless the stored predictor ``found`` can be the ``role`` source
    (``accuracy`` or ``latency``) of candidates of ``network``."""
    from cosearch.predictors.fewshot import FewShotLatencyPredictor

    pid = found.predictor_id
    target = found.target.lower()
    if role == "latency":
        # latency_ms is the unit of the metric; cycles or another cost would be recorded as ms
        fits = target.startswith("lat_") or target == "latency_ms"
    else:
        costs = {*Cost.METRICS, "macs"}
        fits = not (target.startswith("lat") or "latency" in target or target in costs)
    if not fits:
        raise ConfigError(
            f"predictor {pid!r} predicts {found.target!r}, which is not "
            f"{'a latency in ms' if role == 'latency' else 'an accuracy'}; it cannot be the "
            f"{role} source",
            key=role,
        )
    if isinstance(found.estimator, FewShotLatencyPredictor):
        raise ConfigError(
            f"predictor {pid!r} is a meta-trained few-shot predictor that no device was adapted "
            "to; store one adapted to a device (cosearch predictor train --kind fewshot)",
            key=role,
        )
    if found.encoding not in ("table", "paths"):
        return  # features of the network itself: they see every option
    if found.space != network.name:
        raise ConfigError(
            f"predictor {pid!r} encodes {found.space!r} genotypes; this campaign's network "
            f"space is {network.name!r}",
            key=role,
        )
    trained = found.training_ref.get("network_options")
    if found.training_ref.get("source") == "table" and found.space is not None:
        from cosearch.predictors.tables import network_options_of

        # with the dataset and batch of the column it learned: predictors stored before
        # kept the space's defaults whatever the column (or no options at all)
        stored = trained if isinstance(trained, Mapping) else None
        trained = network_options_of(found.space, found.target, stored)
    if not isinstance(trained, Mapping):
        return
    import json

    ours = json.loads(json.dumps(network.options))  # as the training reference stores them
    ignored = {"batch"} if role == "accuracy" else set()  # accuracy does not depend on it
    for key in sorted(set(trained) - ignored):  # an option added since keeps its default
        if trained.get(key) != ours.get(key):
            raise ConfigError(
                f"predictor {pid!r} sees only the {found.space} genotype ({found.encoding} "
                f"encoding) and was trained on the network with {key} = {trained.get(key)}; "
                f"this campaign's has {key} = {ours.get(key)} (train one with the onnx "
                "encoding to cover other options)",
                key=role,
            )


def _check_latency_table(source: str, what: str, network: NetworkSpace) -> str:
    """The device of ``benchmark:nb201/<device>`` if the table applies; else ConfigError."""
    space, sep, device = what.partition("/")
    devices = ", ".join(NB201_LATENCY_DEVICES)
    if space != "nb201" or not sep or device not in NB201_LATENCY_DEVICES:
        raise ConfigError(
            f"latency source {source!r} names no published latency table; valid: "
            + ", ".join(f"benchmark:nb201/{d}" for d in NB201_LATENCY_DEVICES),
            key="latency",
        )
    if network.name != "nb201":
        raise ConfigError(
            f"latency source {source!r} applies only to network space 'nb201'; "
            f"got {network.name!r} (devices: {devices})",
            key="latency",
        )
    from cosearch.spaces.nb201 import DEFAULT_OPTIONS

    changed = sorted(k for k, v in network.options.items() if v != DEFAULT_OPTIONS.get(k, v))
    if changed:
        k = changed[0]
        raise ConfigError(
            f"latency source {source!r} applies only to the default nb201 network (batch 1); "
            f"option {k!r} is {network.options[k]} (default {DEFAULT_OPTIONS[k]})",
            key="latency",
        )
    return device


@cache
def _nb201_latency_table() -> dict[str, dict[str, float]]:
    """``{device: {arch_str: latency_ms}}``; rows of both shipped tables are in NAS-Bench-201
    index order, so the accuracy table's row ``i`` names the cell of latency row ``i``."""
    data = resources.files("cosearch.spaces").joinpath("data")
    with data.joinpath("nb201_accuracy.csv.gz").open("rb") as raw, gzip.open(raw, "rb") as unz:
        reader = csv.DictReader(io.TextIOWrapper(unz, encoding="utf-8", newline=""))
        archs = [row["arch_str"] for row in reader]
    with data.joinpath("nb201_latency.csv.gz").open("rb") as raw, gzip.open(raw, "rb") as unz:
        reader = csv.DictReader(io.TextIOWrapper(unz, encoding="utf-8", newline=""))
        rows = list(reader)
    if len(rows) != len(archs) or any(int(r["idx"]) != i for i, r in enumerate(rows)):
        raise RuntimeError("nb201_latency.csv.gz and nb201_accuracy.csv.gz rows disagree")
    return {d: {a: float(r[d]) for a, r in zip(archs, rows)} for d in NB201_LATENCY_DEVICES}


def _nb201_latency(arch_str: str, device: str) -> float:
    """Published latency (ms) of the nb201 cell ``arch_str`` on ``device``."""
    return _nb201_latency_table()[device][arch_str]
