"""``progressive_shrinking``: Once-for-All supernet training, then a joint subnet x accelerator
search inside it.

Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient Deployment",
ICLR 2020. One ``ofa_mbv3`` supernet (the campaign's ``[space.net]`` options) is trained once
by progressive shrinking, then searched for subnets together with the accelerator, without
retraining:

1. Training (:mod:`._ofa_train`, :mod:`._ofa_supernet`): phases ``full`` (the largest network,
   elastic resolution), ``kernel`` (+ kernel sizes 3/5/7 via learned kernel transforms),
   ``depth1``/``depth2`` (+ depth >= 3, then >= 2), ``width1``/``width2`` (+ expand ratio >= 4,
   then >= 3; expanded channels sorted by importance before each), each with its own epochs
   (``epochs_full``, ``epochs_kernel``, ``epochs_depth`` and ``epochs_width`` per depth/width
   stage) and peak learning rate (``lr_*``); the later phases distil from the largest network
   (``kd_weight``, ``kd_temperature``). Each elastic step trains ``subnets_per_step`` subnets;
   with ``sandwich`` (the default) two of them are the phase's largest and smallest (the
   sandwich rule of Yu & Huang, "Universally Slimmable Networks", ICCV 2019, and BigNAS, Yu
   et al., ECCV 2020), the rest are drawn at random as in OFA; ``sandwich = false`` is OFA's
   plain random sampling. In development runs on digits (resolution 8 only, the default 28
   epochs, one seed) the smallest subnet's inherited test accuracy was 94.2% with OFA's
   random pairs at ``kd_temperature = 1`` and 98.9% with the sandwich of three at 3 (the
   defaults), the four larger ones within a point of each other. Data come from
   :func:`cosearch.search.data.load_dataset` (``dataset``: scikit-learn's digits by default);
   the supernet trains on the training split.
2. Search (:mod:`._ofa_search`): ``search = "nsga2"`` (NSGA-II) or ``"evolution"``
   (regularized evolution) over every ``net.*`` and ``hw.*`` parameter, ``population``
   candidates per generation, ``generations`` generations at most (0: until the campaign's
   ``trials``). The first population holds the largest and the smallest subnet. Each new
   candidate's subnet is extracted with inherited weights, its BatchNorm statistics are
   recalibrated on ``bn_batches`` training batches, and its validation accuracy is reported
   with ``ctx.report`` as an ordinary trial: source ``supernet:ofa/<campaign>@<step>`` (the
   checkpoint the weights come from), fidelity 0.5; the campaign's evaluator adds latency,
   energy and area for the candidate's accelerator. User attributes: ``ofa_generation``,
   ``ofa_checkpoint``, ``ofa_test_accuracy`` (test split) and, when screened,
   ``ofa_predicted_accuracy``. With ``predictor = true`` each generation draws
   ``screen_factor`` times more children than it measures and keeps the best by the accuracy
   a random forest over the one-hot parameters predicts (fitted on the candidates measured so
   far, from ``population`` of them on) and the cost model's costs.

Checkpoints (the store's ``checkpoints`` table): after every epoch the supernet, the teacher and
the SGD momentum (``keep_checkpoints`` kept, step = global epoch index); with
``phase_checkpoints`` also the supernet weights at the end of every phase, under the strategy
name ``progressive_shrinking/phases`` with step = phase index (0-5). A killed run resumes at the
epoch after the last checkpoint with the same random draws it would have made, so it ends with
the same weights as an uninterrupted run; the search then replays the trials already reported
(same seed, same outcomes) without measuring them again and continues. One process runs a
campaign (the training is not split across workers).

``supernet_from = "<campaign>"`` skips training and searches the finished supernet of another
progressive_shrinking campaign in the same store (same ``[space.net]`` options): train once,
search for many accelerator families. Subnets are then scored on the validation and test splits
of the campaign that trained the supernet (its dataset, which must be this campaign's, split by
its seed): split by this campaign's seed, about 60 % of them were images the supernet had
trained on.

Randomness derives from the campaign's ``seed`` (not from the run's seed, which changes with
the number of trials already stored), so a resumed run replays the same schedule.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from cosearch.errors import ConfigError
from cosearch.evaluate import Measurement
from cosearch.search._base import (
    MUTATION_PROB,
    Option,
    WeightSharingStrategy,
    json_scalar,
    register_strategy,
    torch_device,
)
from cosearch.search.data import check_dataset_spec

if TYPE_CHECKING:
    from cosearch.search._ofa_search import Outcome
    from cosearch.search._ofa_supernet import OFASupernet
    from cosearch.search._ofa_train import EpochEnd, SubnetScorer

__all__ = ["ProgressiveShrinkingStrategy", "SUPERNET_FIDELITY", "PHASE_SLOT"]

#: fidelity of accuracies with inherited weights after BN recalibration (OFA reports these
#: close to fine-tuned accuracy; they are still a proxy, without any training of the subnet)
SUPERNET_FIDELITY = 0.5
#: the checkpoint "strategy" name under which phase-end supernet weights are kept
PHASE_SLOT = "progressive_shrinking/phases"

_CHOICES = {"search": ("nsga2", "evolution"), "device": ("auto", "cpu", "cuda")}


@register_strategy("progressive_shrinking")
class ProgressiveShrinkingStrategy(WeightSharingStrategy):
    """Once-for-All progressive shrinking plus joint search; see the module docstring.

    Defaults train a width-0.25 supernet on digits (28 epochs) in about 6 minutes on one
    CPU core.
    """

    provides: ClassVar[tuple[str, ...]] = ("accuracy",)
    spaces: ClassVar[tuple[str, ...]] = ("ofa_mbv3",)
    options: ClassVar[dict[str, Option]] = {
        "dataset": Option(
            str,
            "digits",
            help="digits | module:function (runs from your own file, not from a store's "
            "copy, unless $COSEARCH_TRUSTED_DATASETS lists it) | folder:PATH",
            validate=check_dataset_spec,
        ),
        "device": Option(str, "auto", help="auto (CUDA when present) | cpu | cuda"),
        "threads": Option(
            int,
            1,
            1,
            256,
            "torch CPU threads during the run (the weights, so the trials, depend on it)",
        ),
        "batch_size": Option(int, 64, 2, 65_536, "training batch size"),
        "batches_per_epoch": Option(int, 0, 0, None, "cap on training batches (0: all)"),
        "epochs_full": Option(int, 8, 1, 100_000, "epochs of the full-network phase"),
        "epochs_kernel": Option(int, 4, 0, 100_000, "epochs of the elastic-kernel phase"),
        "epochs_depth": Option(int, 4, 0, 100_000, "epochs of each elastic-depth stage"),
        "epochs_width": Option(int, 4, 0, 100_000, "epochs of each elastic-width stage"),
        "lr_full": Option(float, 0.1, 0.0, None, "peak learning rate, full phase"),
        "lr_kernel": Option(float, 0.05, 0.0, None, "peak learning rate, kernel phase"),
        "lr_depth": Option(float, 0.05, 0.0, None, "peak learning rate, depth stages"),
        "lr_width": Option(float, 0.05, 0.0, None, "peak learning rate, width stages"),
        "momentum": Option(float, 0.9, 0.0, 1.0, "SGD momentum (Nesterov)"),
        "weight_decay": Option(float, 3e-5, 0.0, None, "SGD weight decay (not on BN/bias)"),
        "subnets_per_step": Option(int, 3, 1, 64, "subnets trained per elastic step"),
        "sandwich": Option(
            bool, True, help="each elastic step trains the phase's largest and smallest too"
        ),
        "kd_weight": Option(float, 1.0, 0.0, None, "weight of the distillation loss"),
        "kd_temperature": Option(float, 3.0, 0.01, 100.0, "distillation temperature"),
        "bn_batches": Option(int, 8, 1, 100_000, "training batches for BN recalibration"),
        "search": Option(str, "nsga2", help="nsga2 | evolution"),
        "population": Option(int, 16, 2, 100_000, "candidates per generation"),
        "generations": Option(int, 0, 0, None, "generations at most (0: until the trials)"),
        "sample_size": Option(int, 4, 1, 100_000, "evolution: members sampled per cycle"),
        "mutation_prob": MUTATION_PROB,
        "crossover_prob": Option(float, 0.9, 0.0, 1.0, "nsga2: crossover probability"),
        "predictor": Option(bool, False, help="screen candidates with an accuracy predictor"),
        "screen_factor": Option(int, 4, 1, 1000, "children drawn per measured one (predictor)"),
        "supernet_from": Option(str, "", help="campaign whose trained supernet to search"),
        "keep_checkpoints": Option(int, 2, 1, 100_000, "per-epoch checkpoints kept"),
        "phase_checkpoints": Option(bool, True, help="also keep phase-end supernet weights"),
    }

    #: test hook: called with each epoch's :class:`~._ofa_train.EpochEnd` after its checkpoint
    on_epoch_end: Callable[[EpochEnd], None] | None = None

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for key, valid in _CHOICES.items():
            if self.params[key] not in valid:
                raise ConfigError(
                    f"The {key!r} option of strategy progressive_shrinking must be one of "
                    f"{', '.join(valid)}. Got {self.params[key]!r} instead.",
                    key=key,
                )

    # -- the run ------------------------------------------------------------------------------
    def run(self, ctx: Any) -> None:
        """Train (or resume, or load with ``supernet_from``), then search until ``ctx.target``
        trials are COMPLETE. Raises ConfigError when the dataset does not fit the space's
        ``in_channels``/``num_classes``, when ``device = "cuda"`` without CUDA, or when
        ``supernet_from`` names no finished supernet of the same space options."""
        import torch

        from cosearch.search._ofa_supernet import OFASupernet
        from cosearch.search._ofa_train import SubnetScorer, init_weights
        from cosearch.search.data import load_dataset

        p = self.params
        seed = int(ctx.config.seed)
        opts = ctx.network.options
        data_seed = seed
        if p["supernet_from"]:  # its splits, or the supernet has seen the images it is scored on
            dataset, data_seed = self._trained_on(ctx, p["supernet_from"])
            if dataset != p["dataset"]:
                raise ConfigError(
                    f"The supernet of campaign {p['supernet_from']!r} was trained on dataset "
                    f"{dataset!r}; this campaign's dataset is {p['dataset']!r} (set dataset = "
                    f"{dataset!r} to search it)",
                    key="dataset",
                )
        data = load_dataset(p["dataset"], seed=data_seed, trusted=not ctx.config.stored)
        for what, have in (("in_channels", data.in_channels), ("num_classes", data.num_classes)):
            if int(opts[what]) != have:
                raise ConfigError(
                    f"dataset {p['dataset']!r} has {what} = {have} but the ofa_mbv3 space's "
                    f"option {what} is {opts[what]}; set it in [space.net]",
                    key="space.net",
                )
        cfg = self._train_config(seed, torch_device(p["device"], "progressive_shrinking"))
        threads = torch.get_num_threads()
        torch.set_num_threads(p["threads"])
        try:
            net = OFASupernet(opts)
            init_weights(net, torch.Generator().manual_seed(seed))
            net.to(cfg.device)
            scorer = SubnetScorer(data, cfg)
            if p["supernet_from"]:
                checkpoint = self._load_from(ctx, net)
            else:
                checkpoint = self._train(ctx, net, cfg, data, scorer)
            if len(ctx.reported()) < ctx.target:
                self._search(ctx, net, scorer, checkpoint, seed)
        finally:
            torch.set_num_threads(threads)

    def _train_config(self, seed: int, device: str) -> Any:
        from cosearch.search._ofa_train import TrainConfig

        p = self.params
        return TrainConfig(
            batch_size=p["batch_size"],
            momentum=p["momentum"],
            weight_decay=p["weight_decay"],
            kd_weight=p["kd_weight"],
            kd_temperature=p["kd_temperature"],
            subnets_per_step=p["subnets_per_step"],
            sandwich=p["sandwich"],
            batches_per_epoch=p["batches_per_epoch"],
            bn_batches=p["bn_batches"],
            device=device,
            seed=seed,
        )

    def phase_plan(self) -> tuple[dict[str, int], dict[str, float]]:
        """``(epochs, lr)`` per phase name, from the options."""
        p = self.params
        epochs = {
            "full": p["epochs_full"],
            "kernel": p["epochs_kernel"],
            "depth1": p["epochs_depth"],
            "depth2": p["epochs_depth"],
            "width1": p["epochs_width"],
            "width2": p["epochs_width"],
        }
        lrs = {
            "full": p["lr_full"],
            "kernel": p["lr_kernel"],
            "depth1": p["lr_depth"],
            "depth2": p["lr_depth"],
            "width1": p["lr_width"],
            "width2": p["lr_width"],
        }
        return epochs, lrs

    def _train(self, ctx: Any, net: OFASupernet, cfg: Any, data: Any, scorer: SubnetScorer) -> str:
        """Train or resume; returns the checkpoint id ``<campaign>@<step>`` of the result."""
        from cosearch.search._ofa_train import ProgressiveShrinking, schedule

        p = self.params
        phases = schedule(net.choices, *self.phase_plan())
        trainer = ProgressiveShrinking(net, phases, cfg, data, scorer, log=ctx.log)
        ckpt = ctx.load_checkpoint()
        if ckpt is not None:
            step, meta, tensors = ckpt
            try:
                trainer.load(meta, tensors)
            except ValueError as exc:
                raise ConfigError(
                    f"campaign {ctx.config.name!r}: cannot resume from checkpoint {step}: {exc}",
                    key="strategy",
                ) from exc
            if not trainer.done:
                ctx.log(f"progressive shrinking: resuming after checkpoint {step}")

        def save(end: EpochEnd) -> None:
            # the phase snapshot first: a kill between the two saves repeats the epoch and
            # saves the same snapshot again (insert-or-ignore), never skips it
            if p["phase_checkpoints"] and end.epoch == phases[end.meta["phase_index"]].epochs - 1:
                weights = {k: v for k, v in end.tensors.items() if k.startswith("net.")}
                phase_meta = {
                    "phase": end.phase,
                    "step": end.step,
                    "config": end.meta["config"],
                    "history": end.meta["history"],
                }
                ctx.store.save_checkpoint(
                    ctx.campaign_id,
                    PHASE_SLOT,
                    int(end.meta["phase_index"]),
                    phase_meta,
                    weights,
                )
            ctx.save_checkpoint(end.step, end.meta, end.tensors, keep=p["keep_checkpoints"])
            hook = self.on_epoch_end
            if hook is not None:
                hook(end)

        if not trainer.done:
            trainer.run(save)
        return f"{ctx.config.name}@{trainer.total_epochs - 1}"

    def trained_subnet(self, store: Any, config: Any, trial: Any) -> Any:
        """The subnet of a COMPLETE trial of this strategy's campaign (``config``) as it was
        scored: the weights of the supernet checkpoint its ``ofa_checkpoint`` attribute names,
        BatchNorm recalibrated on the same training batches, in eval mode on the CPU (an
        ``OFAMBv3Net``; :func:`~cosearch.spaces.ofa_mbv3.ofa_mbv3_onnx_from_torch` exports it).

        Raises StoreInputError when the trial names no checkpoint or the checkpoint is gone."""
        from types import SimpleNamespace

        from cosearch.errors import StoreInputError
        from cosearch.search._ofa_supernet import OFASupernet
        from cosearch.search._ofa_train import SubnetScorer
        from cosearch.search.data import load_dataset
        from cosearch.spaces import get_space

        where = str(trial.user_attrs.get("ofa_checkpoint", ""))
        name, _, step = where.rpartition("@")
        row = store.campaign(name) if name and step.isdigit() else None
        ckpt = None if row is None else store.load_checkpoint(int(row["campaign_id"]), self.name)
        if row is not None and ckpt is not None and ckpt[0] != int(step):
            ckpt = store.load_checkpoint(int(row["campaign_id"]), self.name, int(step))
        if ckpt is None:
            raise StoreInputError(
                f"trial {trial.number} was scored with supernet checkpoint {where or '(none)'}, "
                f"which {store.display_url} no longer holds; export it with --structure-only"
            )
        options = get_space(config.network, **config.space_options()).options
        net = OFASupernet(options)
        net.load_state_dict({k[4:]: v for k, v in ckpt[2].items() if k.startswith("net.")})
        seed = int(config.seed)
        ctx = SimpleNamespace(store=store, config=config)
        dataset, data_seed = self.params["dataset"], seed
        if self.params["supernet_from"]:  # scored on the splits of the campaign that trained it
            dataset, data_seed = self._trained_on(ctx, self.params["supernet_from"])
        # the export reads the config (and a linked campaign's) back from the store
        scorer = SubnetScorer(
            load_dataset(dataset, seed=data_seed, trusted=False), self._train_config(seed, "cpu")
        )
        return scorer.prepare(net, trial.params)

    def _trained_on(self, ctx: Any, name: str) -> tuple[str, int]:
        """``(dataset, seed)`` of the campaign that trained the supernet ``name`` searches
        (following ``supernet_from`` links); this campaign's when there is none to follow
        (``_load_from`` then says what is missing)."""
        import json

        seen: set[str] = set()
        dataset, seed = self.params["dataset"], int(ctx.config.seed)
        while name and name not in seen:
            seen.add(name)
            row = ctx.store.campaign(name)
            if row is None:
                break
            cfg = json.loads(row["config_json"])
            if cfg.get("strategy") != self.name:
                break
            opts = cfg.get("strategy_options", {})
            dataset = opts.get("dataset", type(self).options["dataset"].default)
            seed = int(cfg.get("seed", 0))
            name = opts.get("supernet_from", "")
        return str(dataset), seed

    def _load_from(self, ctx: Any, net: OFASupernet) -> str:
        name = self.params["supernet_from"]
        row = ctx.store.campaign(name)
        ckpt = (
            None if row is None else ctx.store.load_checkpoint(int(row["campaign_id"]), self.name)
        )
        if ckpt is None or not ckpt[1].get("done"):
            raise ConfigError(
                f"The 'supernet_from' option names campaign {name!r}, which has no finished "
                f"progressive_shrinking supernet in {ctx.store.display_url}.",
                key="supernet_from",
            )
        step, meta, tensors = ckpt
        if meta.get("config") != net.config:
            raise ConfigError(
                f"The supernet of campaign {name!r} was trained for other ofa_mbv3 options "
                f"({meta.get('config', {}).get('options')}); this campaign's are "
                f"{net.config['options']}.",
                key="supernet_from",
            )
        dev = net.classifier.weight.device
        net.load_state_dict({k[4:]: v.to(dev) for k, v in tensors.items() if k.startswith("net.")})
        return f"{name}@{step}"

    # -- the search ---------------------------------------------------------------------------
    def _search(
        self, ctx: Any, net: OFASupernet, scorer: SubnetScorer, checkpoint: str, seed: int
    ) -> None:
        from cosearch._report import CONSTRAINTS_KEY
        from cosearch.search._ofa_search import (
            AccuracyPredictor,
            JointSearch,
            Outcome,
            canonical_key,
        )

        p = self.params
        directions = list(ctx.config.directions)
        metric_names = list(ctx.config.metric_names)
        sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
        source = f"supernet:ofa/{checkpoint}"

        def key(params: Mapping[str, Any]) -> str:
            return canonical_key(ctx.network, params)

        def outcome_of(values: Any, constraints: Any) -> Outcome:
            if values is None:
                return Outcome(tuple([np.inf] * len(sign)), np.inf)
            vals = tuple(float(v) for v in np.asarray(values, dtype=float) * sign)
            return Outcome(vals, float(sum(max(0.0, float(c)) for c in constraints or [])))

        # what was reported before (resume): replayed, not measured again
        replay: dict[str, tuple[Outcome, float]] = {}
        for t in ctx.reported():
            acc = t.user_attrs.get("metrics", {}).get("accuracy")
            if acc is None:
                continue
            out = outcome_of(t.values, t.system_attrs.get(CONSTRAINTS_KEY))
            replay.setdefault(key(t.params), (out, float(acc)))
        complete = len(ctx.reported())
        measured: dict[str, tuple[float, float, float]] = {}  # canonical net -> val, test, s
        history: list[tuple[dict[str, Any], float]] = []  # (params, accuracy) in walk order
        predictions: list[tuple[float, float]] = []

        def net_key(params: Mapping[str, Any]) -> str:
            return key({k: v for k, v in params.items() if k.startswith("net.")})

        def accuracy(params: Mapping[str, Any]) -> tuple[float, float, float]:
            k = net_key(params)
            if k not in measured:
                t0 = time.perf_counter()
                sub = scorer.prepare(net, params)
                r = int(params["net.r"])
                val = scorer.accuracy(sub, r, "val")
                secs = time.perf_counter() - t0
                measured[k] = (val, scorer.accuracy(sub, r, "test"), secs)
            return measured[k]

        def evaluate(params: dict[str, Any], generation: int, predicted: float | None) -> Any:
            nonlocal complete
            k = key(params)
            if k in replay:
                out, acc = replay[k]
                history.append((params, acc))
                return out
            if complete >= ctx.target:
                return None
            val, test, secs = accuracy(params)
            attrs: dict[str, Any] = {
                "ofa_generation": generation,
                "ofa_checkpoint": checkpoint,
                "ofa_test_accuracy": test,
            }
            if predicted is not None:
                attrs["ofa_predicted_accuracy"] = float(predicted)
                predictions.append((float(predicted), val))
            trial = ctx.report(
                params,
                {"accuracy": Measurement(val, source, SUPERNET_FIDELITY, secs)},
                user_attrs=attrs,
            )
            history.append((params, val))
            if trial.state.name != "COMPLETE":
                return outcome_of(None, None)
            complete += 1
            return outcome_of(trial.values, trial.system_attrs.get(CONSTRAINTS_KEY))

        screen = None
        if p["predictor"]:
            ch = net.choices
            predictor = AccuracyPredictor(ch.ks, ch.e, ch.d, ch.r, seed=seed)
            fitted_on = [0]

            def screen(cands: list[dict[str, Any]]) -> list[tuple[float, Outcome]] | None:
                if len(history) < p["population"]:
                    return None
                if fitted_on[0] != len(history):
                    predictor.fit([h[0] for h in history], [h[1] for h in history])
                    fitted_on[0] = len(history)
                preds = predictor.predict(cands)
                return [
                    (float(a), self._predicted_outcome(ctx, c, float(a), metric_names, sign))
                    for c, a in zip(cands, preds)
                ]

        search = JointSearch(
            _all_params(ctx),
            evaluate,
            key,
            algorithm=p["search"],
            population=p["population"],
            generations=p["generations"],
            sample_size=p["sample_size"],
            mutation_prob=p["mutation_prob"],
            crossover_prob=p["crossover_prob"],
            screen=screen,
            screen_factor=p["screen_factor"],
            seed=int(np.random.SeedSequence([seed, 1]).generate_state(1)[0]),
        )
        rng = np.random.default_rng([seed, 2])
        seeds = [
            {**net.largest(), **ctx.hardware.sample(rng)},
            {**net.smallest(), **ctx.hardware.sample(rng)},
        ]
        seeds = [{k: json_scalar(v) for k, v in s.items()} for s in seeds]
        search.run(seeds)
        ctx.log(
            f"progressive shrinking: search done, {search.evaluated} candidates "
            f"({len(measured)} subnets measured)"
        )
        if predictions:
            from scipy.stats import kendalltau

            pred, true = zip(*predictions)
            tau = kendalltau(pred, true).statistic if len(pred) > 1 else float("nan")
            ctx.log(f"progressive shrinking: predictor Kendall tau {tau:.2f} on {len(pred)}")

    @staticmethod
    def _predicted_outcome(
        ctx: Any, params: Mapping[str, Any], accuracy: float, names: list[str], sign: np.ndarray
    ) -> Outcome:
        """Objectives of ``params`` with a predicted accuracy and the cost model's costs."""
        from cosearch.search._ofa_search import Outcome

        try:
            arch = ctx.network.build(params)
            acc = ctx.hardware.build(params)
            ev = ctx.evaluator.evaluate(
                arch, acc, given={"accuracy": Measurement(accuracy, "predictor:ofa-forest", 0.1)}
            )
        except Exception as exc:  # screened out, as the campaign fails a candidate it cannot price
            ctx.log(f"progressive shrinking: screening skipped a candidate ({exc})")
            return Outcome(tuple([np.inf] * len(sign)), np.inf)
        values = np.asarray(ev.metrics.values_of(names), dtype=float) * sign
        violations = [c.violation(ev.metrics[c.metric].value) for c in ctx.config.constraints]
        violations.append(float(len(ev.cost.violations)))
        return Outcome(tuple(float(v) for v in values), float(sum(max(0.0, v) for v in violations)))


def _all_params(ctx: Any) -> dict[str, Any]:
    """``{"net.ks_0": Param, ..., "hw.pe_rows": Param, ...}`` of the campaign's two spaces."""
    out = {f"net.{k}": v for k, v in ctx.network.params.items()}
    out.update({f"hw.{k}": v for k, v in ctx.hardware.params.items()})
    return out
