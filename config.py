"""The campaign TOML: schema, validation, and the frozen :class:`CampaignConfig`.

A campaign file looks like::

    name = "quickstart"
    seed = 0
    trials = 200
    # storage = "sqlite:///cosearch.db"    (the --storage flag wins over this)

    [space]
    network = "nb201"
    hardware = "systolic"
    [space.net]           # options of the network space (e.g. channels = 16)
    [space.hw]            # search-range overrides: pe_rows = [8, 64], dataflow = ["ws", "os"]

    [objectives]
    accuracy = "maximize"
    latency_ms = "minimize"
    energy_mj = "minimize"
    constraints = ["area_mm2 <= 4"]

    [evaluate]
    accuracy = "benchmark:nb201/cifar10"   # or "predictor:<id>" (a predictor in the store),
                                           # or "train:digits/5ep" (train each candidate)
    cost = "analytical:systolic"
    # latency = "predictor:<id>"           (optional: latency_ms from a stored predictor)

    [strategy]
    name = "nsga2"
    population_size = 20  # every other key is an option of the strategy

    [screen]              # optional: multi-fidelity screening (see cosearch._screening)
    accuracy = "predictor:nb201-acc"       # cheap sources, same syntax as [evaluate]
    cost = "analytical:systolic"
    candidates = 2000     # candidates screened per round
    promote = 20          # of them, evaluated with the [evaluate] sources per round

Every error names the key, the bad value and the rule, with the file and line where the key
is written.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosearch.errors import ConfigError

__all__ = [
    "CampaignConfig",
    "Objective",
    "Constraint",
    "ScreenConfig",
    "load_config",
    "parse_config",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_CONSTRAINT_RE = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
_DIRECTIONS = {"maximize": "maximize", "max": "maximize", "minimize": "minimize", "min": "minimize"}
_TOP_KEYS = (
    "name",
    "storage",
    "seed",
    "trials",
    "space",
    "objectives",
    "evaluate",
    "strategy",
    "screen",
)
_SCREEN_KEYS = ("accuracy", "cost", "latency", "candidates", "promote", "batch_size")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # "maximize" | "minimize"


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``; :meth:`violation` is <= 0 when satisfied (Optuna's convention)."""

    metric: str
    op: str
    bound: float

    def violation(self, value: float) -> float:
        if self.op in ("<=", "<"):
            v = value - self.bound
        else:
            v = self.bound - value
        if self.op in ("<", ">") and v == 0:
            return math.ulp(1.0)  # a strict bound that is met with equality is violated
        return float(v)

    def __str__(self) -> str:
        # short where that loses nothing (4, not 4.0), every digit otherwise: this string is
        # part of the campaign's identity, so two bounds that differ must print differently
        short = f"{self.bound:g}"
        bound = short if float(short) == self.bound else repr(self.bound)
        return f"{self.metric} {self.op} {bound}"


@dataclass(frozen=True)
class ScreenConfig:
    """The optional ``[screen]`` table: cheap sources that score many candidates, and how
    many of them the expensive ``[evaluate]`` sources then score.

    ``candidates`` are screened per round and the best ``promote`` of all screened (not yet
    promoted) candidates are promoted per round; ``batch_size`` screened trials are written
    per transaction.
    """

    accuracy: str | None
    cost: str
    latency: str | None = None
    candidates: int = 1000
    promote: int = 10
    batch_size: int = 500

    def sources(self) -> dict[str, str | None]:
        return {"accuracy": self.accuracy, "cost": self.cost, "latency": self.latency}


@dataclass(frozen=True)
class CampaignConfig:
    name: str
    seed: int
    trials: int
    network: str
    hardware: str
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    network_options: Mapping[str, Any] = field(default_factory=dict)
    hardware_ranges: Mapping[str, Any] = field(default_factory=dict)
    accuracy_source: str | None = None
    cost_source: str = "analytical:systolic"
    #: "predictor:<id>" replacing the cost source's latency_ms, or None
    latency_source: str | None = None
    #: "memory" (per process), "store" (also the layer_costs table), "auto" (the model decides)
    layer_cache: str = "auto"
    #: which trials get dashboard artifacts (ONNX, per-layer plot, accelerator JSON)
    artifacts: str = "front"
    #: "off", or "dominated": stop training a candidate (``train:`` accuracy) that a finished
    #: trial dominates at the same epoch (see :meth:`cosearch.Campaign.early_stop_rule`)
    early_stop: str = "off"
    strategy: str = "random"
    strategy_options: Mapping[str, Any] = field(default_factory=dict)
    storage: str | None = None
    #: the ``[screen]`` table, or None (no screening); not part of :meth:`identity`: the
    #: screened trials live in their own study, which checks its sources itself
    screen: ScreenConfig | None = None
    text: str = ""
    path: str | None = None
    #: the folder of the TOML file (None for text): a relative ``onnx_file`` path is read
    #: from there, as written in the file; see :meth:`space_options`
    base_dir: str | None = None
    #: read back from a store (a worker without --config, export), not handed over by the
    #: user: code it names (a ``module:function`` dataset) is not run (search/data.py)
    stored: bool = False

    def text_to_store(self) -> str:
        """The TOML text as the store keeps it: see :func:`text_to_store`."""
        return text_to_store(self.text, self.storage)

    def space_options(self) -> dict[str, Any]:
        """The network space's options, with a relative ``onnx_file`` path taken from the
        TOML file's folder; from the working directory only when the file is there and not
        beside the TOML (how such paths were read before). ``network_options`` keeps the path
        as written: it is part of the campaign's identity."""
        opts = dict(self.network_options)
        written = opts.get("path")
        if self.network == "onnx_file" and isinstance(written, str) and written and self.base_dir:
            beside = Path(self.base_dir) / written
            if not Path(written).is_absolute() and (beside.exists() or not Path(written).exists()):
                opts["path"] = str(beside)
        return opts

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def metric_names(self) -> list[str]:
        return [o.metric for o in self.objectives]

    def identity(self) -> dict[str, Any]:
        """What must match for a stored campaign to be resumed with this config.

        ``trials``, ``storage`` and the file's formatting may change between runs.
        """
        return json.loads(
            json.dumps(
                {
                    "network": self.network,
                    "hardware": self.hardware,
                    "network_options": dict(self.network_options),
                    "hardware_ranges": dict(self.hardware_ranges),
                    "objectives": [[o.metric, o.direction] for o in self.objectives],
                    "constraints": [str(c) for c in self.constraints],
                    "accuracy_source": self.accuracy_source,
                    "cost_source": self.cost_source,
                    "latency_source": self.latency_source,
                    "strategy": self.strategy,
                    "strategy_options": dict(self.strategy_options),
                    "seed": self.seed,
                },
                sort_keys=True,
            )
        )


def _locate(text: str, dotted: str) -> int | None:
    """1-based line where ``dotted`` (``table.sub.key``) is written, or its table header."""
    parts = dotted.split(".")
    table: list[str] = []
    header_line: dict[str, int] = {}
    for i, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^\[\s*([^\[\]]+?)\s*\]$", line)
        if m:
            table = [p.strip().strip('"') for p in m.group(1).split(".")]
            header_line[".".join(table)] = i
            continue
        m = re.match(r'^"?([A-Za-z0-9_\-.]+)"?\s*=', line)
        if m and table + m.group(1).split(".") == parts:
            return i
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in header_line:
            return header_line[".".join(parts[:n])]
    # a key under the top level whose table was never opened
    return None


class _Reader:
    """Wraps the parsed TOML so every error carries key, file and line."""

    def __init__(self, data: Mapping[str, Any], text: str, path: str | None) -> None:
        self.data = data
        self.text = text
        self.path = path

    def error(self, key: str, message: str, cls: type[ConfigError] = ConfigError) -> ConfigError:
        return cls(message, key=key, line=_locate(self.text, key), path=self.path)

    def get(
        self, key: str, default: Any = ..., *, types: tuple[type, ...] | type, what: str
    ) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if default is ...:
                    raise self.error(key, f"missing required key {key!r} ({what})")
                return default
            node = node[part]
        if not isinstance(node, types) or (
            isinstance(node, bool) and bool not in (types if isinstance(types, tuple) else (types,))
        ):
            raise self.error(key, f"{key} must be {what}; got {node!r}")
        return node

    def table(self, key: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
        tbl = self.get(key, {}, types=dict, what="a table")
        if allowed is not None:
            for k in tbl:
                if k not in allowed:
                    raise self.error(
                        f"{key}.{k}",
                        f"unknown key {key}.{k}; allowed keys in [{key}]: {', '.join(allowed)}",
                    )
        return tbl


def parse_config(
    text: str, *, path: str | None = None, base_dir: str | None = None, stored: bool = False
) -> CampaignConfig:
    """Parse and validate campaign TOML text. Raises :class:`ConfigError`.

    ``base_dir``: the folder relative file paths in the text are read from (the TOML file's
    folder; :func:`load_config` passes it); the working directory when None. ``stored``: the
    text of a campaign already in a store, read back to use it: checks added since such
    campaigns were made (a finite constraint bound, strategy options that fit the space) are
    skipped, so that reading, exporting and joining them keep working."""
    if not isinstance(text, str):
        raise ConfigError(f"config text must be a str of TOML; got {type(text).__name__}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        raise ConfigError(
            f"not valid TOML: {exc}", line=int(m.group(1)) if m else None, path=path
        ) from exc
    except RecursionError:  # tomllib recurses per nesting level
        raise ConfigError(
            "not valid TOML for a campaign: arrays or tables nested too deeply", path=path
        ) from None
    r = _Reader(data, text, path)
    for k in data:
        if k not in _TOP_KEYS:
            raise r.error(k, f"unknown key {k!r}; allowed top-level keys: {', '.join(_TOP_KEYS)}")

    name = r.get("name", types=str, what="a campaign name string")
    if not _NAME_RE.match(name):
        raise r.error(
            "name",
            f"name must be 1-100 characters of letters, digits, '_', '.', '-' "
            f"starting with a letter or digit; got {name!r}",
        )
    storage = r.get("storage", None, types=str, what="an SQLAlchemy URL string")
    if storage is not None and not stored and not storage.strip():
        raise r.error(
            "storage",
            "storage must be a database URL (sqlite:///PATH or a server URL); got an empty "
            "string (leave the key out for the default)",
        )
    if storage is not None and not stored:
        try:
            text_to_store(text, storage)
        except ValueError as exc:
            raise r.error("storage", str(exc)) from None
    seed = r.get("seed", 0, types=int, what="an int >= 0")
    if seed < 0 or seed >= 2**63:
        raise r.error("seed", f"seed must be an int in [0, 2**63); got {seed}")
    trials = r.get("trials", 100, types=int, what="an int in [1, 10000000]")
    if trials < 1 or trials > 10_000_000:
        raise r.error("trials", f"trials must be an int in [1, 10000000]; got {trials}")

    r.table("space", ("network", "hardware", "net", "hw"))
    network = r.get("space.network", types=str, what="a network space name")
    hardware = r.get("space.hardware", types=str, what="a hardware space name")
    net_opts = r.table("space.net")
    hw_ranges = r.table("space.hw")

    obj_tbl = r.table("objectives")
    objectives: list[Objective] = []
    constraints: list[Constraint] = []
    for metric, value in obj_tbl.items():
        key = f"objectives.{metric}"
        if metric == "constraints":
            items = value if isinstance(value, list) else None
            if items is None:
                raise r.error(
                    key, f'{key} must be a list of strings such as "area_mm2 <= 4"; got {value!r}'
                )
            for item in items:
                m = _CONSTRAINT_RE.match(item) if isinstance(item, str) else None
                if not m:
                    raise r.error(
                        key,
                        f"bad constraint {item!r} in {key}: expected "
                        '"<metric> <=|>=|<|> <number>", e.g. "area_mm2 <= 4"',
                    )
                bound = float(m.group(3))
                # "1e400" parses to inf: met by nothing or by all
                if not math.isfinite(bound) and not stored:
                    raise r.error(
                        key,
                        f"bad constraint {item!r} in {key}: the bound is not a finite number",
                    )
                constraints.append(Constraint(m.group(1), m.group(2), bound))
            continue
        if not isinstance(value, str) or value.lower() not in _DIRECTIONS:
            raise r.error(key, f'{key} must be "maximize" or "minimize"; got {value!r}')
        objectives.append(Objective(metric, _DIRECTIONS[value.lower()]))
    if not objectives:
        raise r.error(
            "objectives", '[objectives] needs at least one metric, e.g. accuracy = "maximize"'
        )

    r.table("evaluate", ("accuracy", "cost", "latency", "layer_cache", "artifacts", "early_stop"))
    accuracy = r.get(
        "evaluate.accuracy",
        None,
        types=str,
        what='an accuracy source such as "benchmark:nb201/cifar10" or "train:digits/5ep"',
    )
    cost = r.get("evaluate.cost", None, types=str, what=_COST_RULE)
    if cost is None:
        cost = default_cost_source(hardware, hw_ranges)
    latency = r.get(
        "evaluate.latency", None, types=str, what='a latency source such as "predictor:cpu-hybrid"'
    )

    layer_cache = r.get(
        "evaluate.layer_cache", "auto", types=str, what='"auto", "memory" or "store"'
    )
    if layer_cache not in ("auto", "memory", "store"):
        raise r.error(
            "evaluate.layer_cache",
            f'evaluate.layer_cache must be "auto", "memory" or "store"; got {layer_cache!r}',
        )

    artifacts = r.get("evaluate.artifacts", "front", types=str, what='"front", "all" or "none"')
    if artifacts not in ("front", "all", "none"):
        raise r.error(
            "evaluate.artifacts",
            f'evaluate.artifacts must be "front", "all" or "none"; got {artifacts!r}',
        )

    early_stop = r.get("evaluate.early_stop", "off", types=str, what='"off" or "dominated"')
    if early_stop not in ("off", "dominated"):
        raise r.error(
            "evaluate.early_stop",
            f'evaluate.early_stop must be "off" or "dominated"; got {early_stop!r}',
        )
    if early_stop != "off" and not (accuracy or "").startswith("train:"):
        raise r.error(
            "evaluate.early_stop",
            f"evaluate.early_stop = {early_stop!r} stops training candidates early; it needs an "
            f'accuracy source "train:<dataset>/<N>ep", not {accuracy!r}',
        )
    if early_stop != "off" and Objective("accuracy", "maximize") not in objectives:
        raise r.error(
            "evaluate.early_stop",
            'evaluate.early_stop needs accuracy = "maximize" among the objectives: it stops '
            "candidates whose accuracy a finished trial beats at no higher cost",
        )

    screen = (
        _parse_screen(r, default_cost_source(hardware, hw_ranges)) if "screen" in data else None
    )

    strat_tbl = r.table("strategy")
    strategy = r.get("strategy.name", "random", types=str, what="a strategy name")
    strategy_options = {k: v for k, v in strat_tbl.items() if k != "name"}

    cfg = CampaignConfig(
        name=name,
        seed=seed,
        trials=trials,
        network=network,
        hardware=hardware,
        objectives=tuple(objectives),
        constraints=tuple(constraints),
        network_options=net_opts,
        hardware_ranges=hw_ranges,
        accuracy_source=accuracy,
        cost_source=cost,
        latency_source=latency,
        layer_cache=layer_cache,
        artifacts=artifacts,
        early_stop=early_stop,
        strategy=strategy,
        strategy_options=strategy_options,
        storage=storage,
        screen=screen,
        text=text,
        path=path,
        base_dir=base_dir,
        stored=stored,
    )
    _check_names(cfg, r, stored)
    return cfg


_COST_RULE = (
    'a cost source such as "analytical:systolic" (unset: the hardware space\'s own cost '
    'model, "measured:cpu" for the device space)'
)


def default_cost_source(hardware: str, hw_options: Mapping[str, Any] | None = None) -> str:
    """The cost source of ``[evaluate]`` and ``[screen]`` when they name none: the hardware
    space's default cost model, ``analytical:<model>``, or ``measured:<device>`` for the
    ``device`` space (its ``device`` option, else ``cpu``)."""
    from cosearch.hwmodels import default_cost_model

    model = default_cost_model(hardware)
    if model != "measured":
        return f"analytical:{model}"
    from cosearch.hwmodels.measured import DEFAULT_DEVICE, canonical_device

    device = (hw_options or {}).get("device") or DEFAULT_DEVICE
    try:
        return f"measured:{canonical_device(str(device))}"
    except ConfigError:  # the hardware space reports the bad device name itself
        return f"measured:{device}"


def _parse_screen(r: _Reader, default_cost: str) -> ScreenConfig:
    r.table("screen", _SCREEN_KEYS)
    accuracy = r.get(
        "screen.accuracy", None, types=str, what='an accuracy source such as "predictor:<id>"'
    )
    cost = r.get("screen.cost", None, types=str, what=_COST_RULE)
    if cost is None:
        cost = default_cost
    latency = r.get(
        "screen.latency", None, types=str, what='a latency source such as "predictor:cpu-hybrid"'
    )
    counts = {}
    for key, default, high in (
        ("candidates", 1000, 10_000_000),
        ("promote", 10, 1_000_000),
        ("batch_size", 500, 100_000),
    ):
        value = r.get(f"screen.{key}", default, types=int, what=f"an int in [1, {high}]")
        if not 1 <= value <= high:
            raise r.error(
                f"screen.{key}", f"screen.{key} must be an int in [1, {high}]; got {value}"
            )
        counts[key] = value
    if counts["promote"] > counts["candidates"]:
        given = r.get("screen.promote", None, types=int, what="an int") is not None
        raise r.error(
            "screen.promote" if given else "screen.candidates",
            f"screen.promote must be <= screen.candidates ({counts['candidates']}); "
            f"got {counts['promote']}" + ("" if given else " (its default; set promote)"),
        )
    return ScreenConfig(accuracy, cost, latency, **counts)


def _check_names(cfg: CampaignConfig, r: _Reader, stored: bool = False) -> None:
    """Resolve every name against the registries, re-keying errors to the TOML key."""
    from cosearch.evaluate import Evaluator
    from cosearch.search import get_strategy
    from cosearch.spaces import get_hardware_space, get_space

    def rekey(exc: ConfigError, table: str) -> ConfigError:
        if exc.key is None:
            key = table
        elif exc.key.split(".")[0] in ("space", "evaluate", "strategy", "objectives", "screen"):
            key = exc.key
        else:
            key = f"{table}.{exc.key}"
        msg = str(exc.args[0]) if exc.args else str(exc)
        return r.error(key, msg, type(exc))

    if cfg.network == "onnx_file" and "path" not in cfg.network_options:
        raise r.error(
            "space.net",
            'the onnx_file space needs [space.net] path = "model.onnx" (the model to price)',
        )
    try:
        net = get_space(cfg.network, **cfg.space_options())
    except ConfigError as exc:
        raise rekey(exc, "space.net") from exc
    except TypeError as exc:
        raise r.error("space.net", f"bad options for network space {cfg.network!r}: {exc}") from exc
    try:
        hw = get_hardware_space(cfg.hardware, **cfg.hardware_ranges)
    except ConfigError as exc:
        raise rekey(exc, "space.hw") from exc
    try:
        ev = Evaluator(
            net, hw, accuracy=cfg.accuracy_source, cost=cfg.cost_source, latency=cfg.latency_source
        )
    except ConfigError as exc:
        raise rekey(exc, "evaluate") from exc
    try:
        strategy = get_strategy(cfg.strategy, **cfg.strategy_options)
        if not stored:
            strategy.check_space([*net.distributions(), *hw.distributions()])
    except ConfigError as exc:
        raise rekey(exc, "strategy") from exc
    from cosearch.search import WeightSharingStrategy

    provided = ev.metric_names()
    if isinstance(strategy, WeightSharingStrategy):
        if strategy.spaces and cfg.network not in strategy.spaces:
            raise r.error(
                "strategy.name",
                f"strategy {cfg.strategy!r} trains supernets of the network space(s) "
                f"{', '.join(strategy.spaces)}; this campaign's is {cfg.network!r}",
            )
        if (cfg.accuracy_source or "").startswith("train:"):
            raise r.error(
                "evaluate.accuracy",
                f"strategy {cfg.strategy!r} measures accuracy itself (its supernet's, and "
                "DARTS's retrained final cell); a 'train:' accuracy source is for the sampler "
                "strategies (random, nsga2, evolution, bayesian, marl, rl)",
            )
        provided = list(dict.fromkeys([*strategy.provides, *provided]))
    for o in cfg.objectives:
        if o.metric not in provided:
            raise r.error(
                f"objectives.{o.metric}",
                f"objective {o.metric!r} is not produced by this campaign's "
                f"evaluator; available metrics: {', '.join(provided)}",
            )
    for c in cfg.constraints:
        if c.metric not in provided:
            raise r.error(
                "objectives.constraints",
                f"constraint {str(c)!r} names unknown metric {c.metric!r}; available "
                f"metrics: {', '.join(provided)}",
            )
    if cfg.screen is not None:
        _check_screen(cfg, cfg.screen, net, hw, r, rekey)


def _check_screen(
    cfg: CampaignConfig, screen: ScreenConfig, net: Any, hw: Any, r: _Reader, rekey: Any
) -> None:
    from cosearch.evaluate import Evaluator

    try:
        ev = Evaluator(net, hw, accuracy=screen.accuracy, cost=screen.cost, latency=screen.latency)
    except ConfigError as exc:
        raise rekey(exc, "screen") from exc
    provided = ev.metric_names()
    if not any(o.metric in provided for o in cfg.objectives):
        raise r.error(
            "screen",
            f"[screen] sources produce none of the objectives "
            f"({', '.join(cfg.metric_names)}); they produce {', '.join(provided)}",
        )


def _example_hint(p: Path) -> str:
    """Where a missing ``examples/NAME.toml`` is when cosearch is installed, not checked out."""
    from cosearch._examples import example_names

    if p.suffix == ".toml" and p.parent.name == "examples" and p.stem in example_names():
        return (
            f" (cosearch ships this example: `cosearch examples {p.stem} > {p.name}`, "
            f"then `cosearch run {p.name}`)"
        )
    return ""


#: the largest campaign TOML file :func:`load_config` reads
MAX_CONFIG_BYTES = 8 * 2**20


def load_config(path: str | Path) -> CampaignConfig:
    """Read and validate a campaign TOML file. Raises :class:`ConfigError`."""
    p = Path(path)
    try:
        if p.exists() and not (p.is_file() or p.is_dir()):  # a FIFO or device blocks or never ends
            raise ConfigError(f"config path is not a regular file: {p}")
        with p.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}{_example_hint(p)}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a TOML file: {p}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:  # a 300 MB file took 14 s and 1 GB before its error
        raise ConfigError(
            f"config file {p} is larger than {MAX_CONFIG_BYTES // 2**20} MiB; a campaign TOML "
            "is a few KB (is this the right file?)"
        )
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark some editors write is not TOML
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file is not UTF-8 text (byte {exc.start})", path=str(p)) from exc
    return parse_config(text, path=str(p), base_dir=os.path.abspath(p.parent))


def text_to_store(text: str, storage: str | None) -> str:
    """``text`` with the password of its ``storage`` URL masked (``***``), as the store keeps
    the config: everyone who can read the store (every worker of a shared server, whoever
    gets a copy of the database file) reads that text, and the URL is not part of the
    campaign. ValueError when the masked text would not parse back to the masked URL (a
    multi-line string, a quoted key with escapes): the caller refuses such a file."""
    from cosearch.store import display_url

    if not storage or display_url(storage) == storage:
        return text
    shown = display_url(storage)

    def masked_ok(candidate: str) -> bool:
        try:
            return tomllib.loads(candidate).get("storage") == shown
        except tomllib.TOMLDecodeError:
            return False

    out = text.replace(storage, shown)  # as written, wherever it is (a comment too)
    if not masked_ok(out):  # written with escapes: the key's line, among the top-level keys
        first_table = re.search(r"(?m)^\s*\[", out)
        end = first_table.start() if first_table else len(out)
        line = re.compile(r"(?m)^(\s*storage\s*=\s*)[\"'].*$")
        out = line.sub(lambda m: m.group(1) + json.dumps(shown), out[:end], count=1) + out[end:]
    if not masked_ok(out):
        raise ValueError(
            "the storage URL carries a password, written so that cosearch cannot mask it in the "
            'copy of this file the store keeps; write it on one line as storage = "URL", or '
            "pass it with --storage or $COSEARCH_STORAGE"
        )
    return out
