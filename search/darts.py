"""``darts``: differentiable architecture search (DARTS, PC-DARTS) with a hardware cost term.

Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019; Xu et al.,
"PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture Search", ICLR 2020.
A supernet of the campaign's ``darts`` or ``nb201`` space (every edge a softmax-weighted mix
of all candidate ops; :mod:`._darts_supernet`) is trained on real data
(:mod:`cosearch.search.data`); weights on the training split with SGD, architecture weights on
the validation split with Adam, first or second order (:mod:`._darts_loop`).

Hardware. The loss of the architecture step is ``CE + lambda * E[cost] / target``, where
``E[cost]`` is the expected latency (or energy) of the mixed network on the current
accelerator, priced per candidate op and position by the campaign's cost model for the
campaign's network (:mod:`._darts_hw`). Joint search: an outer loop picks ``accelerators``
designs and runs one DARTS search per design, so the network adapts to each. The first design
is the hardware space's reference design (a random one when the reference lies outside the
configured search ranges), the others are drawn at random with the campaign's generator. Random
is the simplest outer loop that covers the hardware space without assumptions; relaxing the
categorical hardware choices into the softmax as well (as in DANCE or EDD) is future work.

Trials. After every epoch the derived (discrete) architecture is reported with the round's
accelerator: accuracy is the derived architecture's validation accuracy with the supernet's
weights (``epoch_accuracy = "supernet"``: the mixed supernet's), source
``supernet:darts/epoch-N``, fidelity 0.1; user attributes ``epoch``, ``accelerator_round``,
``supernet_val_accuracy``, ``derived_val_accuracy``, ``expected_cost`` (the hardware term's
value, in ``hw_metric`` units), ``skip_connects``, ``collapse_guard``. Then the round's final
architecture is reported once more with ``final = true``: retrained from scratch for
``retrain_epochs`` epochs (source ``train:<dataset>/<N>ep``, test-split accuracy, fidelity 1);
when the campaign's accuracy source is a benchmark table (nb201 with the default skeleton) the
table gives the final accuracy instead and the retrained one is the user attribute
``retrain_accuracy``. For nb201 every trial also carries ``benchmark_accuracy``: the cell's
NAS-Bench-201 test accuracies (percent, 200 epochs). The table fits only the default 16-channel
5-cell 32x32 network; looking up a cell searched on a smaller skeleton or other data is a *cell
transfer*, the way DARTS papers report NAS-Bench-201 results, so ``benchmark_transfer`` says
whether the campaign's network differs from the table's.

A run's schedule is ``accelerators * (epochs + 1)`` trials (the ``+ 1``: the final; without
retraining and without a table there is none). The campaign's ``trials`` caps it: the search
stops once that many trials are COMPLETE; a larger ``trials`` does not lengthen it.

Networks. The supernet is a small proxy (options ``channels``, ``layers`` or
``cells_per_stage``; the input size, channels and classes are the dataset's); the reported
architectures, their costs and the hardware term refer to the campaign's network
(``[space.net]``), and the final retraining trains the campaign's network with the dataset's
input size, channels and classes.

Collapse guard (``max_skip``). DARTS drifts towards parameter-free ops late in the search
(Zela et al., ICLR 2020; Liang et al., "DARTS+", 2019). Following DARTS+ early stopping, a round
stops after the epoch whose derived normal cell (nb201: the cell) has more than ``max_skip``
``skip_connect`` ops; that epoch is still reported (``collapse_guard = true``) and the round's
final architecture is the last one within the limit. ``max_skip = -1`` turns the guard off.
Unlike DARTS+, the guard watches for a drift: it is armed by the first epoch after the weight-only
warm-up whose cell is within the limit. Cells derived before that come from architecture weights
that have barely moved from their random start (on a small proxy the very first cell often has
4 skips); stopping there ended the search before it began. A round whose cells never come within
the limit runs all its epochs, and its final is the last epoch's cell.

Resume. The state (supernet and architecture weights, optimizer states, the batch-order
generator) is checkpointed in the store after every epoch, with the epoch's report in the JSON
metadata. A killed run resumes from the last checkpoint, first reporting that epoch if the kill
came between checkpoint and report; epochs already in the trials table are never reported
again, so a resumed campaign ends with the same epochs as an uninterrupted one. One process
runs a darts campaign (the search is not split across workers).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from cosearch.errors import ConfigError
from cosearch.evaluate import Measurement
from cosearch.search._base import (
    Option,
    WeightSharingStrategy,
    json_scalar,
    register_strategy,
    torch_device,
)
from cosearch.search.data import check_dataset_spec

__all__ = ["DartsStrategy"]

_CHOICES = {
    "edge_normalization": ("auto", "on", "off"),
    "hw_metric": ("latency_ms", "energy_mj"),
    "epoch_accuracy": ("derived", "supernet"),
    "device": ("auto", "cpu", "cuda"),
}
#: fidelity of accuracies estimated with supernet weights (a cheap, biased proxy)
SUPERNET_FIDELITY = 0.1


@register_strategy("darts")
class DartsStrategy(WeightSharingStrategy):
    """DARTS / PC-DARTS with a hardware term, for the ``darts`` and ``nb201`` spaces.

    Defaults are the papers' settings scaled down for a CPU: a search epoch on the digits
    dataset takes seconds. See the module docstring for trials, resume and the guard.
    """

    provides: ClassVar[tuple[str, ...]] = ("accuracy",)
    spaces: ClassVar[tuple[str, ...]] = ("darts", "nb201")
    options: ClassVar[dict[str, Option]] = {
        "epochs": Option(int, 10, 1, 100_000, "search epochs per accelerator round"),
        "accelerators": Option(int, 1, 1, 100_000, "outer-loop rounds (accelerator designs)"),
        "order": Option(int, 1, 1, 2, "1: first-order DARTS; 2: second order (unrolled)"),
        "partial_channels": Option(int, 1, 1, 64, "PC-DARTS K (1 = plain DARTS)"),
        "edge_normalization": Option(str, "auto", help="auto (on when K > 1) | on | off"),
        "lambda": Option(float, 0.0, 0.0, None, "weight of the hardware term (0: off)"),
        "target": Option(
            float, 0.0, 0.0, None, "cost scale in hw_metric units (0: the uniform supernet's)"
        ),
        "hw_metric": Option(str, "latency_ms", help="latency_ms | energy_mj"),
        "dataset": Option(
            str,
            "digits",
            help="digits | module:function (runs from your own file, not from a store's "
            "copy, unless $COSEARCH_TRUSTED_DATASETS lists it) | folder:PATH",
            validate=check_dataset_spec,
        ),
        "batch_size": Option(int, 64, 2, 65_536, "batch size of both splits"),
        "batches_per_epoch": Option(int, 0, 0, None, "cap on training batches (0: all)"),
        "w_lr": Option(float, 0.025, 0.0, None, "SGD learning rate of the weights (cosine)"),
        "w_lr_min": Option(float, 0.001, 0.0, None, "final learning rate of the weights"),
        "w_momentum": Option(float, 0.9, 0.0, 1.0, "SGD momentum"),
        "w_weight_decay": Option(float, 3e-4, 0.0, None, "SGD weight decay"),
        "grad_clip": Option(float, 5.0, 0.0, None, "gradient norm clip of the weights"),
        # DARTS uses 3e-4 over 50 epochs; short CPU searches need larger steps to move alpha
        "arch_lr": Option(float, 3e-3, 0.0, None, "Adam learning rate of alpha and beta"),
        "arch_weight_decay": Option(float, 1e-3, 0.0, None, "Adam weight decay of alpha"),
        "warmup_epochs": Option(int, 0, 0, None, "epochs of weight-only training first"),
        "channels": Option(int, 8, 1, 1024, "supernet width (C of the first cells)"),
        "layers": Option(int, 5, 1, 64, "darts supernet cells"),
        "cells_per_stage": Option(int, 1, 1, 32, "nb201 supernet cells per stage"),
        "max_skip": Option(int, 2, -1, 8, "collapse guard: max skip_connects (-1: off)"),
        "retrain_epochs": Option(int, 10, 0, 100_000, "final retraining epochs (0: none)"),
        "epoch_accuracy": Option(str, "derived", help="derived | supernet"),
        "device": Option(str, "auto", help="auto | cpu | cuda"),
        "threads": Option(
            int,
            1,
            1,
            256,
            "torch CPU threads during the run (the weights, so the trials, depend on it)",
        ),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for key, valid in _CHOICES.items():
            if self.params[key] not in valid:
                raise ConfigError(
                    f"The {key!r} option of strategy darts must be one of {', '.join(valid)}. "
                    f"Got {self.params[key]!r} instead.",
                    key=key,
                )
        k = self.params["partial_channels"]
        if self.params["channels"] % k:
            raise ConfigError(
                f"The 'channels' option of strategy darts ({self.params['channels']}) must be "
                f"a multiple of partial_channels ({k}).",
                key="channels",
            )

    @property
    def edge_norm(self) -> bool:
        mode = self.params["edge_normalization"]
        return mode == "on" or (mode == "auto" and self.params["partial_channels"] > 1)

    # -- the run ------------------------------------------------------------------------------
    def run(self, ctx: Any) -> None:
        """Search ``accelerators`` rounds of ``epochs`` epochs, resuming from the store.

        Raises ConfigError for a dataset that cannot be loaded or does not fit the space, a
        hardware term (``lambda > 0``) with a measured cost source, or ``device = "cuda"``
        without CUDA.
        """
        from cosearch.search.data import load_dataset

        p = self.params
        data = load_dataset(p["dataset"], seed=ctx.config.seed, trusted=not ctx.config.stored)
        if data.image_size % 4:
            raise ConfigError(
                f"dataset {p['dataset']!r} has {data.image_size}x{data.image_size} images; "
                "darts supernets need a size that is a multiple of 4",
                key="dataset",
            )
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(p["threads"])
        try:
            _Run(self, ctx, data).go()
        finally:
            torch.set_num_threads(threads)


class _Run:
    """One call of :meth:`DartsStrategy.run`: rounds, resume, reporting."""

    def __init__(self, strategy: DartsStrategy, ctx: Any, data: Any) -> None:
        from cosearch.search.data import dataset_name

        self.s, self.p, self.ctx, self.data = strategy, strategy.params, ctx, data
        self.space = ctx.network.name
        self.dataset = dataset_name(self.p["dataset"])
        self.device = torch_device(self.p["device"], "darts")
        self.term = self._hardware_term()
        self.done = self._reported_keys()
        self.n_epochs = self.p["epochs"]

    def _hardware_term(self) -> Any:
        if getattr(self.ctx.evaluator, "measured", False):
            if self.p["lambda"] > 0:
                raise ConfigError(
                    "strategy darts with lambda > 0 needs an analytical cost model to price "
                    f"candidate ops; the campaign's cost source is {self.ctx.config.cost_source!r}",
                    key="lambda",
                )
            return None
        from cosearch.search._darts_hw import HardwareTerm

        return HardwareTerm(self.ctx.network, self.ctx.evaluator.cost_model, self.p["hw_metric"])

    def _reported_keys(self) -> set[tuple[int, int]]:
        """(round, epoch) of the trials already reported; finals as (round, -1)."""
        out = set()
        for t in self.ctx.reported():
            ua = t.user_attrs
            if "accelerator_round" in ua:
                out.add((int(ua["accelerator_round"]), -1 if ua.get("final") else int(ua["epoch"])))
        return out

    def _full(self) -> bool:
        return len(self.ctx.reported()) >= self.ctx.target

    def _report(self, key: tuple[int, int], report: Mapping[str, Any]) -> None:
        if key in self.done:
            return
        measured = {
            name: Measurement(*values) for name, values in report.get("measured", {}).items()
        }
        trial = self.ctx.report(report["params"], measured, user_attrs=report["user_attrs"])
        if trial.state.name == "COMPLETE":
            self.done.add(key)

    # -- outer loop ---------------------------------------------------------------------------
    def go(self) -> None:
        ckpt = self.ctx.load_checkpoint()
        resume: tuple[dict[str, Any], dict[str, Any]] | None = None
        if ckpt is None:
            accelerators = self._pick_accelerators()
            first = 0
        else:
            _, meta, tensors = ckpt
            accelerators = meta["accelerators"]
            first = int(meta["round"])
            pending = meta.get("pending")
            if pending is not None:  # killed between checkpoint and report
                self._report((first, int(meta["epoch"])), pending)
            if meta["phase"] == "done":
                first += 1
            else:
                resume = (meta, tensors)
        for k in range(first, len(accelerators)):
            if not self._round(k, accelerators, resume if k == first else None):
                return

    def _pick_accelerators(self) -> list[dict[str, Any]]:
        hw, n = self.ctx.hardware, self.p["accelerators"]
        keys = set(hw.distributions())
        ref = {f"hw.{k}": v for k, v in hw.default().params.items()}
        try:
            ok = set(ref) == keys and hw.validate(ref) is not None
        except ConfigError:  # the reference lies outside the configured search ranges
            ok = False
        picks = [ref] if ok else []
        # from the campaign seed alone (the stream a first run gets): a run cut short before
        # its first checkpoint drew other accelerators when resumed (the run seed counts starts)
        first_run = np.random.SeedSequence([self.ctx.config.seed, 0]).generate_state(1)[0]
        rng = np.random.default_rng(int(first_run))
        while len(picks) < n:
            picks.append(hw.sample(rng))
        return [{k: json_scalar(v) for k, v in a.items()} for a in picks]

    # -- one round ----------------------------------------------------------------------------
    def _round(
        self, k: int, accelerators: list[dict[str, Any]], resume: tuple[Any, Any] | None
    ) -> bool:
        """Search epochs then the final of round ``k``; False once the trial cap is hit."""
        import torch

        from cosearch.search._darts_loop import LoopConfig, SearchState, evaluate, train_epoch
        from cosearch.search._darts_supernet import build_supernet, derive, skip_count

        p, ctx, data = self.p, self.ctx, self.data
        hw_params = accelerators[k]
        acc = ctx.hardware.build(hw_params)
        table = self.term.table(acc) if self.term is not None else None
        target = p["target"] or (self.term.uniform(table) if self.term is not None else 1.0)
        seed = int(np.random.SeedSequence([ctx.config.seed, k]).generate_state(1)[0])
        space_opts = ctx.network.options
        net = build_supernet(
            self.space,
            channels=p["channels"],
            depth=p["layers"] if self.space == "darts" else p["cells_per_stage"],
            in_channels=data.in_channels,
            input_size=data.image_size,
            num_classes=data.num_classes,
            k=p["partial_channels"],
            edge_norm=self.s.edge_norm,
            seed=seed,
            stem_multiplier=int(space_opts.get("stem_multiplier", 3)),
        )
        cfg = LoopConfig(
            epochs=self.n_epochs,
            order=p["order"],
            batch_size=p["batch_size"],
            batches_per_epoch=p["batches_per_epoch"],
            w_lr=p["w_lr"],
            w_lr_min=p["w_lr_min"],
            w_momentum=p["w_momentum"],
            w_weight_decay=p["w_weight_decay"],
            grad_clip=p["grad_clip"],
            arch_lr=p["arch_lr"],
            arch_weight_decay=p["arch_weight_decay"],
            warmup_epochs=p["warmup_epochs"],
            lam=p["lambda"],
            target=target,
            device=self.device,
        )
        state = SearchState(net, cfg, seed)
        start, final, stopped, armed = 0, None, False, False
        if resume is not None:
            meta, tensors = resume
            state.load(tensors)  # load_state_dict copies onto the parameters' device
            start, final, stopped = int(meta["epoch"]) + 1, meta["final_params"], meta["stopped"]
            armed = bool(meta.get("guard_armed", True))  # older checkpoints: armed at once
        term = self.term
        hw_fn = None
        if term is not None and table is not None:

            def hw_fn(n: Any) -> Any:
                return term.expected(n, table)

        step0 = k * (self.n_epochs + 1)
        for epoch in range(start, self.n_epochs):
            if stopped:
                break
            if self._full():
                return False
            t0 = time.perf_counter()
            stats = train_epoch(state, data, epoch, hw_fn if p["lambda"] > 0 else None)
            params, discrete = derive(net, self.space)
            derived_acc = evaluate(state, data.val, discrete)
            supernet_acc = evaluate(state, data.val)
            skips = skip_count(params, self.space)
            guarded = p["max_skip"] >= 0 and epoch >= p["warmup_epochs"]
            collapsed = guarded and armed and skips > p["max_skip"]
            armed = armed or (guarded and skips <= p["max_skip"])
            if not collapsed:
                final = params
            stopped = collapsed
            expected = None
            if hw_fn is not None:
                with torch.no_grad():
                    expected = float(hw_fn(net))
            value = derived_acc if p["epoch_accuracy"] == "derived" else supernet_acc
            seconds = time.perf_counter() - t0
            report = {
                "params": {**params, **hw_params},
                "measured": {
                    "accuracy": [
                        value,
                        f"supernet:darts/epoch-{epoch}",
                        SUPERNET_FIDELITY,
                        seconds,
                    ]
                },
                "user_attrs": {
                    "epoch": epoch,
                    "accelerator_round": k,
                    "supernet_val_accuracy": supernet_acc,
                    "derived_val_accuracy": derived_acc,
                    "train_loss": stats["train_loss"],
                    "expected_cost": expected,
                    "cost_target": target,
                    "skip_connects": skips,
                    "collapse_guard": collapsed,
                    **self._benchmark_attrs(params),
                },
            }
            meta = {
                "round": k,
                "epoch": epoch,
                "phase": "search",
                "stopped": stopped,
                "guard_armed": armed,
                "final_params": final,
                "accelerators": accelerators,
                "pending": report,
            }
            ctx.save_checkpoint(step0 + epoch, meta, state.tensors())
            self._report((k, epoch), report)
            ctx.log(
                f"round {k} epoch {epoch}: val acc {derived_acc:.1f}% (supernet "
                f"{supernet_acc:.1f}%), skips {skips}"
                + (f", E[{p['hw_metric']}] {expected:.4g}" if expected is not None else "")
            )
            if getattr(self.s, "_fail_after_epoch", None) == (k, epoch):  # test hook
                raise KeyboardInterrupt
        if final is None:
            return True
        if (k, -1) not in self.done:
            if self._full():
                return False
            self._final(k, final, hw_params, last_epoch=self._last_epoch(k, start))
        ctx.save_checkpoint(
            step0 + self.n_epochs,
            {"round": k, "epoch": self.n_epochs - 1, "phase": "done", "accelerators": accelerators},
            {},
        )
        return True

    def _last_epoch(self, k: int, start: int) -> int:
        epochs = [e for r, e in self.done if r == k and e >= 0]
        return max(epochs) if epochs else start - 1

    # -- the final architecture ---------------------------------------------------------------
    def _final(
        self, k: int, params: Mapping[str, Any], hw_params: Mapping[str, Any], last_epoch: int
    ) -> None:
        from cosearch.search._retrain import train_from_scratch

        p, ctx, data = self.p, self.ctx, self.data
        table_source = ctx.evaluator.accuracy_source  # e.g. benchmark:nb201/cifar10, or None
        attrs: dict[str, Any] = {
            "final": True,
            "accelerator_round": k,
            "epoch": last_epoch,
            **self._benchmark_attrs(params),
        }
        measured: dict[str, list[Any]] = {}
        if p["retrain_epochs"] > 0:
            t0 = time.perf_counter()
            opts = {
                **ctx.network.options,
                "in_channels": data.in_channels,
                "input_size": data.image_size,
                "num_classes": data.num_classes,
            }
            module = type(ctx.network)(**opts).build(params).to_torch()
            seed = int(np.random.SeedSequence([ctx.config.seed, k, 1]).generate_state(1)[0])
            acc = train_from_scratch(
                module,
                data,
                p["retrain_epochs"],
                seed,
                batch_size=p["batch_size"],
                device=self.device,
            )
            source = f"train:{self.dataset}/{p['retrain_epochs']}ep"
            attrs["retrain_accuracy"] = acc
            if table_source is None:
                measured["accuracy"] = [acc, source, 1.0, time.perf_counter() - t0]
        elif table_source is None:
            return  # nothing measures the final architecture
        report = {"params": {**params, **hw_params}, "measured": measured, "user_attrs": attrs}
        self._report((k, -1), report)
        ctx.log(f"round {k} final: {attrs.get('retrain_accuracy', 'table')}")

    def _benchmark_attrs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.space != "nb201":
            return {}
        from cosearch.spaces.nb201 import DATASETS, DEFAULT_OPTIONS, benchmark_accuracy

        opts = self.ctx.network.options
        transfer = any(opts[k] != v for k, v in DEFAULT_OPTIONS.items() if k != "batch")
        return {
            "benchmark_accuracy": {d: benchmark_accuracy(params, d) for d in DATASETS},
            "benchmark_transfer": transfer,
        }
