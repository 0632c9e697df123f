"""The bodies of the ``cosearch`` subcommands (printing around library calls)."""

from __future__ import annotations

import argparse
import csv
import errno
import io
import json
import math
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from cosearch._report import (
    WHOLE_CSV_JSON,
    WHOLE_JSON,
    campaign_status,
    format_table,
    front_rows,
    load_campaign,
)
from cosearch.errors import (
    ConfigError,
    CosearchError,
    CosearchInputError,
    MeasurementError,
    OnnxImportError,
    StoreInputError,
)


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _emit(cols: list[str], rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        plain = [{k: _json_value(v) for k, v in row.items()} for row in rows]
        _out(json.dumps(plain, indent=2, allow_nan=False))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        _out(buf.getvalue())
    else:
        _out(format_table(cols, rows, hint=WHOLE_CSV_JSON) if rows else "(no rows)")


def _config_storage(cfg: Any, args: argparse.Namespace) -> str | None:
    """The store URL of ``run`` and ``worker --config``: ``--storage``, else the config's
    ``storage`` key (refused when it is an in-memory database: nothing would be kept)."""
    from cosearch.store import memory_url

    if args.storage:
        return str(args.storage)
    if cfg is not None and cfg.storage and memory_url(cfg.storage):
        raise ConfigError(
            f"storage {cfg.storage!r} is an in-memory database: nothing would be kept when "
            "the command ends; use sqlite:///PATH or a server database",
            key="storage",
            path=cfg.path,
        )
    return None if cfg is None else cfg.storage


def _check_count(flag: str, value: int | None) -> None:
    """A trial or candidate count from the command line: the config's own bounds."""
    if value is not None and not 1 <= value <= 10_000_000:
        raise CosearchInputError(f"{flag} must be an int in [1, 10000000]; got {value}")


def _store(args: argparse.Namespace, *, create: bool = False) -> Any:
    from cosearch.store import open_store

    return open_store(args.storage, create=create)


# -- run ------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    import optuna

    from cosearch.campaign import Campaign
    from cosearch.config import load_config

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says it better
    cfg = load_config(args.config)
    _check_count("--trials", args.trials)
    one_shot = args.screen is not None or args.promote is not None
    _check_count("--screen", args.screen)
    _check_count("--promote", args.promote)
    if one_shot and args.no_screen:
        raise CosearchInputError("--no-screen cannot be combined with --screen or --promote")
    if one_shot and cfg.screen is None:
        raise CosearchInputError(
            f"--screen and --promote need a [screen] table in {args.config} (cheap sources, "
            "candidates, promote)"
        )
    campaign = Campaign.from_config(cfg, storage=_config_storage(cfg, args))
    if cfg.screen is not None and not args.no_screen:
        # its sources (a predictor that must exist, say) are checked before the campaign is
        # stored; with --no-screen they are not needed (the predictor may not exist yet)
        campaign.screener  # noqa: B018
    if one_shot:
        return _run_one_shot(campaign, args)
    target = args.trials or cfg.trials
    before = campaign.count()
    verb = "resuming" if before else "starting"
    progress = f"{before}/{target}" if before <= target else f"{before} (target {target})"
    print(
        f"{verb} campaign {cfg.name!r}: {cfg.network} x {cfg.hardware}, strategy "
        f"{cfg.strategy}, {progress} trials complete, store {campaign.store.display_url}",
        file=sys.stderr,
    )
    try:
        if cfg.screen is not None and not args.no_screen:
            print(
                f"screening {cfg.screen.candidates} candidates per round with "
                f"{_sources(cfg.screen)}, promoting {cfg.screen.promote} per round",
                file=sys.stderr,
            )
            summary = campaign.run_screened(target, progress=not args.no_progress)
        else:
            summary = campaign.run(target, progress=not args.no_progress)
    except KeyboardInterrupt:
        flags = (["--trials", str(args.trials)] if args.trials else []) + (
            ["--no-screen"] if args.no_screen else []
        )
        again = _command_for(campaign, "run", str(args.config), *flags)
        print(
            f"interrupted: {_complete(campaign)}/{target} trials complete and stored; "
            f"`{again}` resumes the campaign",
            file=sys.stderr,
        )
        return 130
    if summary.interrupted_marked:
        print(
            f"marked {summary.interrupted_marked} interrupted trial(s) of dead workers as FAIL",
            file=sys.stderr,
        )
    print(
        f"{summary.completed} trials complete ({summary.ran} new, {summary.failed} failed) "
        f"in {summary.seconds:.1f} s",
        file=sys.stderr,
    )
    _print_run_front(campaign)
    return 0


def _sources(screen: Any) -> str:
    return ", ".join(f"{k} {v}" for k, v in screen.sources().items() if v)


def _run_one_shot(campaign: Any, args: argparse.Namespace) -> int:
    """``cosearch run --screen N`` and/or ``--promote K``: exactly that, then the front."""
    progress = not args.no_progress
    if args.screen is not None:
        before = campaign.screener.count()
        try:
            s = campaign.screen(args.screen, progress=progress)
        except KeyboardInterrupt:
            done = campaign.screener.count()
            print(
                f"interrupted: {done - before} candidates screened and stored "
                f"({done} screened in all); the next --screen adds to them",
                file=sys.stderr,
            )
            return 130
        print(
            f"screened {s.screened} candidates ({s.failed} failed) in {s.seconds:.1f} s "
            f"({s.screened / max(s.seconds, 1e-9):.0f}/s); {s.total} screened in all",
            file=sys.stderr,
        )
    if args.promote is not None:
        try:
            p = campaign.promote(args.promote, progress=progress)
        except KeyboardInterrupt:
            again = _command_for(campaign, "run", str(args.config))
            print(
                "interrupted: the promoted candidates not measured yet stay queued; "
                f"`{again}` measures them first",
                file=sys.stderr,
            )
            return 130
        print(
            f"promoted {p.promoted} candidates ({p.failed} failed) in {p.seconds:.1f} s; "
            f"{p.available} screened candidates never promoted",
            file=sys.stderr,
        )
    _print_run_front(campaign)
    return 0


def _complete(campaign: Any) -> str:
    """The campaign's COMPLETE trials for a message after Ctrl-C, which may come while the
    database is unreachable (a worker waiting for its server): then "?"."""
    try:
        return str(campaign.count())
    except Exception:  # noqa: BLE001 - only a number in a message
        return "?"


def _command_for(campaign: Any, *words: str) -> str:
    """``cosearch WORDS`` as a shell line, with ``--storage`` when the campaign's store is not
    the default one (its password hidden)."""
    from cosearch.store import default_storage_url

    cmd = ["cosearch", *words]
    if campaign.store.url != default_storage_url():
        cmd += ["--storage", campaign.store.display_url]
    return shlex.join(cmd)


def _print_run_front(campaign: Any) -> None:
    from cosearch._report import pareto_front

    cfg = campaign.config
    front, note = pareto_front(campaign.study)  # what campaign.pareto() gives, and its note
    cons = ", ".join(str(c) for c in cfg.constraints)
    _out(
        f"\nPareto front of {cfg.name!r}: {len(front)} trial(s)"
        + (f" meeting {cons}" if cons else "")
        + note
    )
    hint = f"`{_command_for(campaign, 'pareto', cfg.name, '--format', 'csv')}` prints them whole"
    if front:
        cols, rows = front_rows(campaign.study, front)
        _out(format_table(cols, rows, hint=hint))
    elif campaign.count():
        _print_least_violating(campaign.study, cfg.name, 5, hint)
    else:
        _out("no COMPLETE trial yet")


def _print_least_violating(
    study: Any, name: str, k: int, hint: str = WHOLE_CSV_JSON
) -> list[dict[str, Any]]:
    from cosearch._report import least_violating_trials, violation_rows

    pairs = least_violating_trials(study, k)
    cols, rows = violation_rows(study, pairs)
    cons = ", ".join(study.user_attrs.get("cosearch.constraints", [])) or "its constraints"
    _out(
        f"no COMPLETE trial of {name!r} meets {cons}; the {len(rows)} least-violating "
        "trial(s), smallest total violation first:"
    )
    _out(format_table(cols, rows, hint=hint))
    return rows


def cmd_worker(args: argparse.Namespace) -> int:
    import optuna

    from cosearch.campaign import Campaign
    from cosearch.config import load_config
    from cosearch.store import open_store

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    finite = math.isfinite(args.heartbeat) and math.isfinite(args.grace)
    if not finite or args.heartbeat <= 0 or args.grace <= args.heartbeat:
        raise CosearchInputError(
            f"--grace ({args.grace}) must exceed --heartbeat ({args.heartbeat}) > 0"
        )
    _check_count("--trials", args.trials)
    if not (math.isfinite(args.reconnect) and args.reconnect >= 0):
        raise CosearchInputError(
            f"--reconnect must be a number of seconds >= 0; got {args.reconnect}"
        )
    opts = {"heartbeat_s": args.heartbeat, "grace_s": args.grace, "reconnect_s": args.reconnect}
    # the config first: a bad one must not leave a new, empty store behind
    cfg = load_config(args.config) if args.config is not None else None
    if cfg is not None and cfg.name != args.name:
        raise CosearchInputError(
            f"--config {args.config} defines campaign {cfg.name!r}, not {args.name!r}"
        )
    # as for run: the config's storage key when --storage is not given (a worker that ignored
    # it started a separate campaign in ./cosearch.db)
    url = _config_storage(cfg, args)
    store = open_store(url, create=cfg is not None)
    if cfg is not None:
        campaign = Campaign(cfg, store, **opts)
        if cfg.screen is not None and not args.no_screen:
            campaign.screener  # noqa: B018 - checks its sources before the campaign is stored
        if store.campaign(args.name) is not None:  # refused unless it matches, as `run` does
            campaign.study  # noqa: B018 - (the worker ran the stored one, ignoring the file)
    else:
        store.require_campaign(args.name)  # raises with the list of campaigns
        store.close()
        campaign = Campaign.from_store(args.name, storage=url, **opts)
    target = args.trials if args.trials is not None else campaign.config.trials
    # a line at the start: without --progress nothing else is printed until the worker ends
    print(
        f"worker joining campaign {args.name!r} ({campaign.config.strategy}): "
        f"{campaign.count()}/{target} trials complete, store {campaign.store.display_url}",
        file=sys.stderr,
    )
    try:
        if campaign.config.screen is not None and not args.no_screen:
            summary = campaign.run_screened(target, progress=args.progress)
        else:
            summary = campaign.run(target, progress=args.progress)
    except KeyboardInterrupt:
        flags = (["--trials", str(args.trials)] if args.trials else []) + (
            ["--no-screen"] if args.no_screen else []
        )
        again = _command_for(campaign, "worker", args.name, *flags)
        print(
            f"interrupted: campaign at {_complete(campaign)}/{target} trials complete; other "
            f"workers go on, and `{again}` joins again",
            file=sys.stderr,
        )
        return 130
    print(
        f"worker done: {summary.ran} trials completed here, {summary.failed} failed, "
        f"{summary.interrupted_marked} stale recovered; campaign at "
        f"{summary.completed}/{target}",
        file=sys.stderr,
    )
    return 0


# -- read-side commands ---------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    with _store(args) as store:
        names = [args.name] if args.name else store.campaign_names()
        infos = []
        for n in names:
            try:
                infos.append(campaign_status(store, n))
            except StoreInputError as exc:
                if args.name:
                    raise
                print(f"warning: {exc}", file=sys.stderr)  # the others still list
    if args.format == "json":
        _out(json.dumps(infos if not args.name else infos[0], indent=2))
        return 0
    if not infos:
        if not names:
            _out(f"no campaigns in {store.display_url}")
        return 0
    rows = [
        {
            "campaign": i["name"],
            "complete": i["trials"]["COMPLETE"],
            "running": i["trials"]["RUNNING"],
            "queued": i["trials"]["WAITING"],
            "failed": i["trials"]["FAIL"],
            "pruned": i["trials"]["PRUNED"],
            "feasible": i["feasible"],
            "front": i["front_size"],
            "screened": i["screened"],
            "space": f"{i['network']} x {i['hardware']}",
            "strategy": i["strategy"],
            "created (UTC)": i["created"],
        }
        for i in infos
    ]
    _out(format_table(list(rows[0]), rows))
    if args.name:
        i = infos[0]
        objs = ", ".join(f"{m} ({d})" for m, d in i["objectives"])
        _out(f"\nobjectives: {objs}")
        if i["constraints"]:
            _out(f"constraints: {', '.join(i['constraints'])}")
        if i["fidelity"]:
            _out("\nCOMPLETE trials by fidelity (lowest fidelity of their objectives):")
            _out(format_table(["stage", "fidelity", "complete"], i["fidelity"]))
    return 0


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def cmd_delete(args: argparse.Namespace) -> int:
    from cosearch._workers import live_workers
    from cosearch.store.queries import study_id_of

    with _store(args) as store:
        row = store.require_campaign(args.name)
        with store.engine.connect() as conn:
            try:
                sid = study_id_of(conn, row["study_name"])
            except KeyError:
                sid = None
        live = live_workers(store, sid) if sid is not None else []
        if live:
            raise CosearchInputError(
                f"campaign {args.name!r} has {len(live)} trial(s) running on live workers "
                f"({', '.join(sorted(set(live)))}); stop them first, then delete it"
            )
        if not args.yes:
            what = (
                f"its {store.optuna_storage.get_n_trials(sid)} trials"
                if sid is not None
                else "what is left of it (its study is gone)"
            )
            raise CosearchInputError(
                f"`cosearch delete {args.name}` deletes campaign {args.name!r} from "
                f"{store.display_url} for good: {what}, screened trials, checkpoints and "
                "artifact files; add --yes to go ahead"
            )
        done = store.delete_campaign(args.name)
    print(
        f"deleted campaign {args.name!r}: {_count(done['trials'], 'trial')} in "
        f"{_count(done['studies'], 'study', 'studies')}, "
        f"{_count(done['checkpoints'], 'checkpoint')}, "
        f"{_count(done['artifacts'], 'artifact file')}",
        file=sys.stderr,
    )
    return 0


def cmd_pareto(args: argparse.Namespace) -> int:
    from cosearch._report import least_violating_trials, pareto_front, violation_rows

    if args.least_violating < 1:
        raise CosearchInputError(f"--least-violating must be >= 1; got {args.least_violating}")
    if args.fidelity is not None:
        return _pareto_by_fidelity(args)
    with _store(args) as store:
        _, study = load_campaign(store, args.name)
        front, note = pareto_front(study)
        cols, rows = front_rows(study, front)
        for row in rows:
            row["feasible"] = True
        pairs = [] if rows else least_violating_trials(study, args.least_violating)
        if pairs:
            # no trial meets the constraints: the nearest misses, flagged feasible: false
            if args.format == "table":
                _print_least_violating(study, args.name, args.least_violating)
                return 0
            cols, rows = violation_rows(study, pairs)
            cols = cols + ["feasible"]
    if args.format == "table" and not rows:
        _out(f"campaign {args.name!r} has no COMPLETE trial yet")
        return 0
    _emit(cols, rows, args.format)
    if note and args.format == "table":
        _out(f"(the front{note}; --fidelity all shows every level)")
    return 0


def _pareto_by_fidelity(args: argparse.Namespace) -> int:
    import math

    import optuna

    from cosearch._report import fidelity_fronts, least_violating_trials, violation_rows
    from cosearch._workers import screen_study_name

    wanted: float | None = None
    if args.fidelity != "all":
        try:
            wanted = float(args.fidelity)
        except ValueError:
            raise CosearchInputError(
                f"--fidelity must be a number such as 1.0 or 'all'; got {args.fidelity!r}"
            ) from None
    with _store(args) as store:
        row, study = load_campaign(store, args.name)
        studies = [("main", study)]
        try:
            screen = optuna.load_study(
                study_name=screen_study_name(row["study_name"]), storage=store.optuna_storage
            )
            studies.append(("screen", screen))
        except KeyError:
            pass
        metrics = [m for m, _ in json.loads(row["config_json"])["objectives"]]
        groups = fidelity_fronts(studies, metrics)
        available = sorted({g.fidelity for g in groups if not math.isnan(g.fidelity)})
        if wanted is not None:
            groups = [g for g in groups if abs(g.fidelity - wanted) < 5e-5]
            if not groups:
                have = ", ".join(f"{f:g}" for f in available) or "none"
                raise CosearchInputError(
                    f"campaign {args.name!r} has no COMPLETE trial at fidelity {wanted:g}; "
                    f"its fidelities: {have}"
                )
        parts = []
        for g in groups:
            cols, rows = front_rows(g.study, g.front)
            for row in rows:
                row["feasible"] = True
            if not rows:  # no feasible trial at this fidelity: its nearest misses
                pairs = least_violating_trials(g.study, args.least_violating, g.trial_ids)
                cols, rows = violation_rows(g.study, pairs)
                cols = cols + ["feasible"]
            parts.append((g, cols, rows))
    if args.format == "table":
        for g, cols, rows in parts:
            objs = ", ".join(g.study.metric_names or [])
            what = "screened" if g.stage == "screen" else "evaluated"
            head = f"\nfidelity {g.fidelity:g} ({what}; objectives {objs}): "
            if g.feasible:
                _out(f"{head}front of {len(rows)} among {g.feasible} feasible of {g.trials} trials")
            else:
                _out(
                    f"{head}no trial of {g.trials} meets the constraints; the {len(rows)} "
                    "least-violating, smallest total violation first:"
                )
            _out(format_table([c for c in cols if c != "feasible"], rows, hint=WHOLE_CSV_JSON))
        return 0
    all_cols: list[str] = ["stage", "fidelity"]
    all_rows: list[dict[str, Any]] = []
    for g, cols, rows in parts:
        all_cols += [c for c in cols if c not in all_cols]
        all_rows += [{**r, "stage": g.stage, "fidelity": g.fidelity} for r in rows]
    _emit(all_cols, all_rows, args.format)
    return 0


def _trial(study: Any, number: int) -> Any:
    """Trial ``number`` of ``study``, looked up by its number (reading every trial to find
    one took 12 s at 12,000 trials)."""
    from cosearch.store._optuna_compat import study_storage

    storage = study_storage(study)
    sid = storage.get_study_id_from_name(study.study_name)
    try:
        return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(sid, number))
    except KeyError:
        n = storage.get_n_trials(sid)
    raise StoreInputError(
        f"campaign {study.study_name!r} has no trial {number}; trials are 0..{n - 1}"
        if n
        else f"campaign {study.study_name!r} has no trials yet"
    )


def _trial_id(store: Any, study: Any, t: Any) -> int:
    storage = store.optuna_storage
    sid = storage.get_study_id_from_name(study.study_name)
    return int(storage.get_trial_id_from_study_id_trial_number(sid, t.number))


def cmd_show(args: argparse.Namespace) -> int:
    from cosearch.evaluate import Evaluator
    from cosearch.hwmodels import Accelerator, extract_layers
    from cosearch.spaces import get_hardware_space, get_space
    from cosearch.spaces.onnx_io import model_from_bytes

    with _store(args) as store:
        row, study = load_campaign(store, args.name)
        t = _trial(study, args.trial)
        ev = store.evaluation(_trial_id(store, study, t)) if t.state.name == "COMPLETE" else None
    info: dict[str, Any] = {
        "campaign": args.name,
        "trial": t.number,
        "state": t.state.name,
        "values": t.values,
        "params": t.params,
        "architecture": t.user_attrs.get("architecture"),
        "accelerator": t.user_attrs.get("accelerator"),
        "constraints": t.system_attrs.get("constraints"),
        "fail_reason": t.user_attrs.get("fail_reason"),
        "learning_curve": t.user_attrs.get("learning_curve"),
        "stopped_at_epoch": t.user_attrs.get("stopped_at_epoch"),
        "measurements": [],
        "layers": [],
    }
    if ev is not None:
        info["measurements"] = [
            {k: m[k] for k in ("metric", "value", "source", "fidelity", "seconds")}
            for m in ev["measurements"]
        ]
        # from the stored identity, not the TOML: parsing that reads an onnx_file space's model
        # file, which show does not need (it prices the stored graph) and may be gone
        cfg = json.loads(row["config_json"])
        net_opts = dict(cfg["network_options"])
        if cfg["network"] == "onnx_file":
            net_opts = {}
        evaluator = Evaluator(
            get_space(cfg["network"], **net_opts),
            get_hardware_space(cfg["hardware"], **cfg["hardware_ranges"]),
            accuracy=cfg.get("accuracy_source"),
            cost=cfg.get("cost_source"),
        )
        info["cost_model"] = evaluator.cost_source
        if not evaluator.measured:  # a measured device times whole models: no layer costs
            layers = extract_layers(model_from_bytes(ev["onnx"]))
            acc = Accelerator(ev["template"], ev["accelerator"])
            cost = evaluator.cost_model.evaluate(layers, acc)
            info["layers"] = [lc.as_dict() for lc in cost.per_layer]
            info["violations"] = list(cost.violations)
    if args.format == "json":
        _out(json.dumps(info, indent=2, default=str))
        return 0
    _out(f"campaign {args.name!r} trial {t.number}: {t.state.name}")
    if info["fail_reason"]:
        _out(f"fail reason: {info['fail_reason']}")
    arch = info["architecture"] or {}
    if arch:
        name = arch.get("string") or "the model file's network"
        _out(f"architecture: {name} (digest {arch.get('digest', '')[:16]})")
    if info["accelerator"]:
        _out(f"accelerator: {info['accelerator']}")
    if info["constraints"] is not None:
        _out(f"constraint values (<= 0 is feasible): {info['constraints']}")
    _out("\nparameters:")
    _out(format_table(["param", "value"], [{"param": k, "value": v} for k, v in t.params.items()]))
    if info["measurements"]:
        _out("\nmetrics:")
        _out(
            format_table(["metric", "value", "source", "fidelity", "seconds"], info["measurements"])
        )
    curve = info["learning_curve"]
    if isinstance(curve, list) and curve:
        stopped = info["stopped_at_epoch"]
        why = f" (stopped early after epoch {stopped})" if stopped else ""
        text = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in curve)
        _out(f"\ntest accuracy after each epoch{why}: {text}")
    if ev is not None and not info["layers"]:
        latency = next((m for m in info["measurements"] if m["metric"] == "latency_ms"), None)
        if latency is not None and str(latency["source"]).startswith("predictor:"):
            whole = f"its latency comes from {latency['source']}, which predicts"
        else:
            whole = f"{info['cost_model']} times"
        _out(f"\nno per-layer costs: {whole} the whole model")
    if info["layers"]:
        _out(f"\nper-layer costs ({info['cost_model']}):")
        cols = [
            "name",
            "kind",
            "macs",
            "compute_cycles",
            "latency_cycles",
            "energy_pj",
            "dram_bytes",
            "utilization",
        ]
        _out(format_table(cols, info["layers"]))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import onnx

    from cosearch.spaces import get_space

    with _store(args) as store:
        row, study = load_campaign(store, args.name)
        t = _trial(study, args.trial)
        ev = store.evaluation(_trial_id(store, study, t))
        if ev is None:
            why = (
                "it was added without cosearch's evaluation (e.g. by Optuna directly), so no "
                "architecture is stored for it"
                if t.state.name == "COMPLETE"
                else f"it is {t.state.name}; only COMPLETE trials have an architecture to export"
            )
            raise StoreInputError(f"trial {t.number} of {args.name!r} cannot be exported: {why}")
        out = _onnx_out(args.onnx, store)
        if args.structure_only:
            data = ev["onnx"]
            note = "structure only (weights are graph inputs)"
        else:
            from cosearch.campaign import stored_config

            cfg = stored_config(store, row)
            arch = get_space(cfg.network, **cfg.space_options()).build(ev["genotype"])
            if arch.digest != ev["arch_digest"]:
                raise StoreInputError(
                    f"this cosearch builds trial {t.number}'s genotype into a different network "
                    "than the one stored (the space, or the model file it reads, changed); use "
                    "--structure-only for the stored graph"
                )
            note = (
                "the model file's weights"
                if cfg.network == "onnx_file"
                else "untrained weights (deterministic initialization)"
            )
            if "ofa_checkpoint" in t.user_attrs:  # scored with a trained supernet's weights
                from cosearch.search import get_strategy
                from cosearch.spaces.ofa_mbv3 import ofa_mbv3_onnx_from_torch

                strategy = get_strategy(cfg.strategy, **cfg.strategy_options)
                model = ofa_mbv3_onnx_from_torch(strategy.trained_subnet(store, cfg, t))
                data = model.SerializeToString()
                note = (
                    f"weights of supernet {t.user_attrs['ofa_checkpoint']}, BatchNorm recalibrated"
                )
            else:
                data = arch.onnx().SerializeToString()
    onnx.checker.check_model(onnx.load_model_from_string(data))  # before a file exists
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise CosearchInputError(f"cannot write {out}: {exc.strerror}") from exc
    print(f"wrote {out} ({len(data) / 1024:.1f} KiB, {note})", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from cosearch._compare import compare_campaigns, parse_target, plot_comparison, to_json

    path = _plot_path(args.plot) if args.plot else None  # before any work
    targets = [parse_target(n, args.storage) for n in args.names]
    cmp = compare_campaigns(targets, fraction=args.fraction)
    if path is not None:
        try:
            plot_comparison(cmp, str(path))
        except OSError as exc:
            raise CosearchInputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        print(f"wrote {path}", file=sys.stderr)
    if args.format == "json":
        _out(to_json(cmp))
        return 0
    objs = ", ".join(f"{n} ({d})" for n, d in cmp.objectives)
    _out(
        f"objectives: {objs}; min-max normalized over all compared campaigns' feasible "
        f"trials, reference point 1.1"
    )
    rows = cmp.table_rows()
    _out(format_table(list(rows[0]), rows))
    for c in cmp.campaigns:
        if c.scored_fidelity is not None:
            _out(
                f"{c.label}: scored at fidelity {c.scored_fidelity:g}, as in `pareto`; its "
                f"{c.lower_fidelity} lower-fidelity trial(s) count as trials only"
            )
    for c in cmp.campaigns:
        if c.fidelity:
            _out(f"\n{c.label}: measurements by source and fidelity")
            _out(format_table(["metric", "source", "fidelity", "n"], c.fidelity))
    return 0


_PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff")


def _onnx_out(name: str, store: Any) -> Path:
    """Where ``export`` writes, checked before any work: the folder exists, and an existing
    file there is not the store itself (``export ... --onnx cosearch.db`` replaced the
    database with the model and every trial was lost) and is an ``.onnx`` file or model."""
    from cosearch.store._store import _sqlite_path

    out = Path(name)
    if out.is_dir():
        raise CosearchInputError(f"cannot write {out}: it is a folder; name a file in it")
    if not out.parent.exists():
        raise CosearchInputError(f"cannot write {out}: folder {out.parent} does not exist")
    if not out.exists():
        return out
    db = _sqlite_path(store.url)
    if db is not None:
        for own in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}.lock")):
            if own.exists() and out.samefile(own):
                raise CosearchInputError(
                    f"cannot write {out}: it is the store's database file; name another file"
                )
    if out.suffix.lower() != ".onnx" and not _is_onnx_model(out):
        raise CosearchInputError(
            f"cannot write {out}: the file exists and is not an ONNX model; remove it first "
            "or name another file"
        )
    return out


def _is_onnx_model(path: Path) -> bool:
    """The file holds an ONNX model with a graph (say one an earlier export wrote)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - not a model, whatever the parser says
        return False
    return model.ir_version > 0 and len(model.graph.node) > 0


def _plot_path(name: str) -> Path:
    """Where a plot named ``name`` goes (``.png`` added when it has no suffix), checked before
    any work: the folder exists, the name is not a folder, matplotlib writes the format."""
    out = Path(name)
    if out.is_dir():
        raise CosearchInputError(f"cannot write plot {out}: it is a folder; name a file in it")
    if not out.suffix:
        out = out.with_name(out.name + ".png")
    if out.suffix.lower() not in _PLOT_SUFFIXES:
        raise CosearchInputError(
            f"cannot write plot {out}: unknown format {out.suffix!r}; use one of "
            + ", ".join(_PLOT_SUFFIXES)
        )
    if not out.parent.exists():
        raise CosearchInputError(f"cannot write {out}: folder {out.parent} does not exist")
    return out


def cmd_query(args: argparse.Namespace) -> int:
    with _store(args) as store:
        df = store.query(args.sql)
    df.columns = _unique_columns([str(c) for c in df.columns])
    df = df.apply(lambda col: col.map(_blob_hex) if col.dtype == object else col)
    if args.format == "json":
        _out(json.dumps(_json_records(df), indent=2, allow_nan=False))
    elif args.format == "csv":
        _out(df.to_csv(index=False))
    else:
        _out(df.to_string(index=False) if len(df) else "(no rows)")
    return 0


def _unique_columns(names: list[str]) -> list[str]:
    """Result column names made unique the way pandas reads a CSV (``id``, ``id.1``, ...):
    ``SELECT *`` over a join repeats names, which JSON records cannot hold."""
    seen: set[str] = set()
    out = []
    for name in names:
        new, k = name, 0
        while new in seen:
            k += 1
            new = f"{name}.{k}"
        seen.add(new)
        out.append(new)
    return out


def _blob_hex(value: Any) -> Any:
    """BLOB values (a stored ONNX model) as hex text, so every output format can show them."""
    return value.hex() if isinstance(value, (bytes, bytearray, memoryview)) else value


def _json_records(df: Any) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts with every digit of every float (pandas' ``to_json`` keeps
    10 decimals: 1.5e-12 became 0.0)."""
    return [
        {c: _json_value(v) for c, v in zip(df.columns, row)}
        for row in df.itertuples(index=False, name=None)
    ]


def _json_value(v: Any) -> Any:
    """``v`` as a JSON value: numpy scalars as Python ones, dates in ISO form, anything else
    as text; NaN, infinities and pandas' missing values as null (JSON has none of them)."""
    import numpy as np

    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if hasattr(v, "isoformat") and str(v) != "NaT":
        return v.isoformat()
    if str(v) in ("<NA>", "NaT"):
        return None
    return str(v)


def _check_port(host: str, port: int) -> None:
    """Raise CosearchInputError unless the dashboard can listen on ``host:port`` (the server
    itself would announce it and then fail with a bare OSError). It binds as optuna-dashboard's
    server does: IPv6 for a host with a ``:``, IPv4 otherwise."""
    import socket

    if not 0 <= port <= 65535:
        raise CosearchInputError(f"--port must be between 0 and 65535; got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            s.bind((host, port))
        except socket.gaierror as exc:
            raise CosearchInputError(f"--host {host!r} is not an address of this machine") from exc
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                msg = f"port {port} on {host} is in use; pass another --port"
            else:
                msg = f"cannot listen on --host {host} --port {port}: {exc.strerror or exc}"
            raise CosearchInputError(msg) from exc


def _loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_dashboard(args: argparse.Namespace) -> int:
    import optuna_dashboard

    _check_port(args.host, args.port)
    with _store(args) as store:
        url = f"http://{args.host}:{args.port}/dashboard/"
        if args.name:
            store.require_campaign(args.name)
            sid = store.optuna_storage.get_study_id_from_name(args.name)
            url += f"studies/{sid}"
        storage_url, shown = store.url, store.display_url
    from cosearch._artifacts import artifact_store

    artifacts = artifact_store(storage_url)
    print(f"optuna-dashboard on {shown}: open {url} (Ctrl-C stops it)", file=sys.stderr)
    if not _loopback(args.host):
        print(
            f"warning: listening on {args.host}: anyone who reaches this port can edit and "
            "delete the store's studies and artifacts (optuna-dashboard has no login)",
            file=sys.stderr,
        )
    import bottle

    app = optuna_dashboard.wsgi(storage_url, artifact_store=artifacts)
    if _loopback(args.host):
        app = _same_machine_only(app)
    bottle.run(app, host=args.host, port=args.port)
    return 0


def _same_machine_only(app: Any) -> Any:
    """``app`` answering only requests whose Host header names this machine.

    A dashboard on 127.0.0.1 is still reachable from any web page the user opens: a page on
    a name the attacker points at 127.0.0.1 (DNS rebinding) would be same-origin with it and
    could call the API that deletes studies. Its requests carry the attacker's name in
    ``Host``; a browser cannot forge that header."""

    def guarded(environ: dict[str, Any], start_response: Any) -> Any:
        host = environ.get("HTTP_HOST", "")
        name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
        if host and not _loopback(name):
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [
                b"cosearch dashboard: this server answers requests for localhost or a "
                b"loopback address only (the Host header named another machine)\n"
            ]
        return app(environ, start_response)

    return guarded


# -- registries -----------------------------------------------------------------------------
def _summary(doc: str | None) -> str:
    """A docstring's first paragraph on one line (a listing's "about" column), with
    reStructuredText literals and Sphinx roles (``:mod:`x```) as plain backquotes."""
    text = " ".join((doc or "").strip().split("\n\n")[0].split()).replace("``", "`")
    return re.sub(r":[a-z]+:`", "`", text)


def _listing(rows: list[dict[str, Any]], fmt: str) -> int:
    if fmt == "json":
        plain = [{k: _json_value(v) for k, v in row.items()} for row in rows]
        _out(json.dumps(plain, indent=2, allow_nan=False))
    else:
        _out(format_table(list(rows[0]), rows, max_width=90, hint=WHOLE_JSON))
    return 0


def cmd_examples(args: argparse.Namespace) -> int:
    from cosearch._examples import example_names, example_summary, example_text

    if args.name is not None:
        text = example_text(args.name)
        if args.format == "json":
            name = args.name.removesuffix(".toml")
            _out(json.dumps({"name": name, "searches": example_summary(text), "toml": text}))
        else:
            sys.stdout.write(text)
        return 0
    rows = [{"name": n, "searches": example_summary(example_text(n))} for n in example_names()]
    if not rows:
        raise CosearchError("this installation of cosearch has no example files")
    return _listing(rows, args.format)


def cmd_spaces(args: argparse.Namespace) -> int:
    from cosearch.spaces import (
        get_hardware_space,
        get_space,
        list_hardware_spaces,
        list_spaces,
    )

    if args.name is not None:
        return _space_parameters(args.name, args.format)
    rows = []
    for name in list_spaces():
        s = get_space(name)
        rows.append(
            {
                "kind": "network",
                "name": name,
                "parameters": len(s.params),
                "size": f"{s.size:.4g}",
                "options": json.dumps(s.options),
            }
        )
    for name in list_hardware_spaces():
        h = get_hardware_space(name)
        rows.append(
            {
                "kind": "hardware",
                "name": name,
                "parameters": len(h.params),
                "size": f"{h.size:.4g}",
                "options": "",
            }
        )
    return _listing(rows, args.format)


def _space_parameters(name: str, fmt: str) -> int:
    """``cosearch spaces NAME``: what the space is and every parameter a campaign can search."""
    from cosearch.errors import UnknownNameError
    from cosearch.hwmodels import default_cost_model
    from cosearch.spaces import get_hardware_space, get_space, list_hardware_spaces, list_spaces

    space: Any
    if name in list_spaces():
        space = get_space(name)
        kind, extra = "network", {"options": space.options}
        where = ""
    elif name in list_hardware_spaces():
        space = get_hardware_space(name)
        kind, extra = "hardware", {"cost_model": default_cost_model(name)}
        where = " (a campaign narrows or widens a range in [space.hw], within its limits)"
    else:
        raise UnknownNameError(
            f"unknown space {name!r}; network spaces: {', '.join(list_spaces())}; "
            f"hardware spaces: {', '.join(list_hardware_spaces())}"
        )
    params = [
        {
            "parameter": f"{space.prefix}.{p.name}",
            "kind": p.kind,
            "search range": p.range_text(),
            # a network space's parameters have no wider limits to open a range to
            **({"limits": p.limits_text()} if kind == "hardware" else {}),
            "meaning": p.help,
        }
        for p in space.params.values()
    ]
    if fmt == "json":
        about = {"kind": kind, "name": name, "summary": _summary(type(space).__doc__), **extra}
        _out(json.dumps({**about, "parameters": params}, indent=2, default=str))
        return 0
    lines = [f"{kind} space {name}: {_summary(type(space).__doc__)}"]
    if kind == "network":
        opts = json.dumps(space.options) if space.options else "none"
        lines.append(f"options (a campaign sets them in [space.net]): {opts}")
    else:
        lines.append(f"priced by default with the {extra['cost_model']} cost model")
    lines.append(f"{len(params)} parameters{where}:" if params else "no parameters")
    _out("\n".join(lines))
    if params:
        _out(format_table(list(params[0]), params, max_width=90, hint=WHOLE_JSON))
    return 0


def cmd_strategies(args: argparse.Namespace) -> int:
    from cosearch.search import get_strategy, list_strategies

    rows = []
    for name in list_strategies():
        s = get_strategy(name)
        doc = _summary(type(s).__doc__)
        rows.append({"name": name, "options": ", ".join(s.options) or "-", "about": doc})
    return _listing(rows, args.format)


def cmd_hwmodels(args: argparse.Namespace) -> int:
    from cosearch.hwmodels import get_cost_model, list_cost_models

    rows = []
    for name in list_cost_models():
        m = get_cost_model(name)
        doc = _summary(type(m).__doc__)
        rows.append(
            {
                "name": name,
                "source": m.source,
                "templates": ", ".join(m.templates) or "any",
                "about": doc,
            }
        )
    return _listing(rows, args.format)


# -- hardware -------------------------------------------------------------------------------
def _parse_dims(items: list[str]) -> dict[str, int]:
    dims: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip().isdigit():
            raise CosearchInputError(f"--dim takes NAME=VALUE with a positive int; got {item!r}")
        if dims.get(name, int(value)) != int(value):
            raise CosearchInputError(f"--dim {name} is given twice ({dims[name]} and {value})")
        dims[name] = int(value)
    return dims


def cmd_hw(args: argparse.Namespace) -> int:
    if args.hw_command != "eval":
        raise CosearchInputError("usage: cosearch hw eval MODEL.onnx --accelerator SPEC")
    from cosearch.hwmodels import evaluate_model
    from cosearch.spaces.onnx_io import load_onnx

    kwargs: dict[str, Any] = {} if args.batch is None else {"batch": args.batch}
    if args.dim:
        kwargs["symbols"] = _parse_dims(args.dim)
    # onnxruntime runs the weights; the analytical models need shapes only
    measured = args.accelerator.partition(":")[0].strip() in ("measured", "device")
    import warnings

    from cosearch.spaces.onnx_io import DefaultedDimensionWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DefaultedDimensionWarning)
        model = load_onnx(
            args.model,
            load_weights=measured,
            analytical=not measured,
            allow_structure_only=not measured,  # timing a graph without its weights is wrong
            **kwargs,
        )
    for w in caught:
        if issubclass(w.category, DefaultedDimensionWarning):
            print(f"note: {w.message} (--dim NAME=VALUE fixes one)", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    try:
        result = evaluate_model(model, args.accelerator, cost_model=args.cost_model)
    except (OnnxImportError, MeasurementError) as err:  # the model is the input: name it
        raise OnnxImportError(f"{args.model}: {err}") from err
    if args.format == "json":
        _out(json.dumps(result, indent=2, default=str))
        return 0
    _out(f"{args.model} on {result['accelerator']} ({result['source']})")
    keys = [
        k
        for k in (
            "latency_ms",
            "latency_cycles",
            "compute_cycles",
            "energy_mj",
            "area_mm2",
            "utilization",
            "macs",
            "spread_ms",
        )
        if result.get(k) is not None
    ]
    _out(format_table(["metric", "value"], [{"metric": k, "value": result[k]} for k in keys]))
    if result.get("violations"):
        _out("violations: " + "; ".join(result["violations"]))
    if result.get("layers"):
        cols = [
            "name",
            "kind",
            "macs",
            "compute_cycles",
            "latency_cycles",
            "energy_pj",
            "dram_bytes",
            "utilization",
        ]
        _out("\nper-layer costs:")
        _out(format_table(cols, result["layers"]))
    return 0


def cmd_predictor(args: argparse.Namespace) -> int:
    from cosearch.predictors._cli import run

    return run(args)
