"""The ``cosearch predictor`` command group: parsing and printing around the library calls.

``add_parsers(sub)`` adds ``predictor`` (with ``fewshot-eval``, ``eval``, ``train``, ``list``)
to the top-level subparsers of ``cosearch.cli``; ``run(args)`` executes the parsed command and
returns the exit code. Errors are raised (ConfigError, StoreInputError, ...) for ``cli.main``
to print as one line with its exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

__all__ = ["add_parsers", "run"]

_KINDS = ("gbrt", "gnn", "fewshot", "ensemble", "gp", "hybrid")
_ENCODINGS = ("table", "paths", "onnx", "graph", "analytical")


def _storage_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage",
        metavar="URL",
        default=None,
        help="SQLAlchemy URL of the store (default: $COSEARCH_STORAGE, else sqlite:///cosearch.db)",
    )


def _table_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--table", metavar="CSV", required=required, help="benchmark table (CSV)")
    p.add_argument(
        "--space",
        required=required,
        help="how to read the table's architectures: nb201 (arch_str), fbnet (op_idx), "
        "ofa_mbv3 (ks, e, d, r)",
    )


def add_parsers(sub: Any) -> argparse.ArgumentParser:
    """Add the ``predictor`` command and its subcommands to ``sub`` (the object
    ``ArgumentParser.add_subparsers`` returned); returns the ``predictor`` parser."""
    parser = sub.add_parser("predictor", help="learned latency and accuracy predictors")
    cmds = parser.add_subparsers(
        dest="predictor_command", parser_class=type(parser), metavar="PREDICTORCOMMAND"
    )

    p = cmds.add_parser(
        "fewshot-eval",
        help="meta-train on a table's other lat_* columns, adapt to one from K rows, score",
    )
    _table_args(p)
    p.add_argument("--target", required=True, metavar="COLUMN", help="the unseen device column")
    p.add_argument("--shots", type=int, required=True, metavar="K", help="measured rows to adapt")
    p.add_argument("--seeds", type=int, default=5, metavar="S", help="seeds 0..S-1 (default 5)")
    p.add_argument(
        "--exclude",
        action="extend",
        nargs="+",
        default=[],
        metavar="COLUMN",
        help="lat_* columns to leave out of meta-training",
    )
    p.add_argument("--format", choices=("json", "table"), default="json")

    p = cmds.add_parser("eval", help="a plain predictor trained on N rows, scored on the rest")
    _table_args(p)
    p.add_argument("--target", required=True, metavar="COLUMN")
    p.add_argument("--train", type=int, required=True, metavar="N", help="training rows")
    p.add_argument("--seeds", type=int, default=5, metavar="S", help="seeds 0..S-1 (default 5)")
    p.add_argument(
        "--model",
        default="auto",
        help="gbrt, ensemble, gp, or auto (default: gbrt for a lat_* column, else ensemble)",
    )
    p.add_argument("--format", choices=("json", "table"), default="json")

    p = cmds.add_parser(
        "train", help="fit a predictor on a table or a campaign and store it under an id"
    )
    p.add_argument("--id", required=True, dest="predictor_id", metavar="ID")
    p.add_argument("--kind", required=True, choices=_KINDS)
    _table_args(p, required=False)
    p.add_argument(
        "--campaign", metavar="NAME", default=None, help="train from this campaign's measurements"
    )
    p.add_argument(
        "--target",
        required=True,
        metavar="COLUMN|METRIC",
        help="table column (with --table) or campaign metric (with --campaign)",
    )
    p.add_argument(
        "--source",
        default=None,
        help="with --campaign: the measurement source to use when the metric has several",
    )
    p.add_argument(
        "--train",
        type=int,
        default=None,
        metavar="N",
        help="rows drawn to train on (default: all; 10 shots for fewshot); the rest score it",
    )
    p.add_argument("--seed", type=int, default=0, help="draws the rows and seeds the model")
    p.add_argument(
        "--encoding",
        choices=_ENCODINGS,
        default=None,
        help="input encoding (default: by kind and source)",
    )
    p.add_argument(
        "--score-rows",
        type=int,
        default=2000,
        metavar="M",
        help="held-out rows scored (default 2000; 0 = all)",
    )
    p.add_argument("--replace", action="store_true", help="overwrite a predictor of that id")
    p.add_argument("--format", choices=("json", "table"), default="json")
    _storage_arg(p)

    p = cmds.add_parser("list", help="the predictors in the store")
    p.add_argument("--format", choices=("table", "json"), default="table")
    _storage_arg(p)
    return parser


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _print(obj: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        _out(json.dumps(obj, indent=2, default=str))
        return
    from cosearch._report import WHOLE_JSON, format_table

    rows = [
        {"key": k, "value": json.dumps(v, default=str) if isinstance(v, (dict, list)) else v}
        for k, v in obj.items()
    ]
    _out(format_table(["key", "value"], rows, max_width=100, hint=WHOLE_JSON))


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``cosearch predictor ...`` command; returns the exit code (0, or 2
    without a subcommand). Library errors propagate."""
    command = getattr(args, "predictor_command", None)
    if command == "fewshot-eval":
        from cosearch.predictors.evaluation import fewshot_eval

        result = fewshot_eval(
            args.table, args.space, args.target, args.shots, args.seeds, tuple(args.exclude)
        )
        _print(result, args.format)
        return 0
    if command == "eval":
        from cosearch.predictors.evaluation import plain_eval

        result = plain_eval(
            args.table, args.space, args.target, args.train, args.seeds, model=args.model
        )
        if args.format == "json":  # the keys fewshot-eval prints (issue 5's contract); the
            # table, for a person, also names the model and the training rows
            result = {k: v for k, v in result.items() if k not in ("model", "train")}
        _print(result, args.format)
        return 0
    if command == "train":
        return _train(args)
    if command == "list":
        return _list(args)
    print(
        "usage: cosearch predictor {fewshot-eval,eval,train,list} ... (see --help)",
        file=sys.stderr,
    )
    return 2


def _train(args: argparse.Namespace) -> int:
    from cosearch.errors import ConfigError
    from cosearch.predictors._training import train_from_campaign, train_from_table
    from cosearch.store import open_store

    from_table = args.table is not None
    if from_table == (args.campaign is not None):
        raise ConfigError("predictor train needs exactly one of --table CSV or --campaign NAME")
    if from_table and args.source is not None:
        raise ConfigError(
            "predictor train --source picks a campaign's measurements; a --table has none"
        )
    if from_table and args.space is None:
        raise ConfigError("predictor train --table needs --space (nb201, fbnet or ofa_mbv3)")
    if args.score_rows < 0:
        raise ConfigError(f"--score-rows must be >= 0; got {args.score_rows}", key="score_rows")
    score_rows = None if args.score_rows == 0 else args.score_rows
    start = time.perf_counter()
    # from a campaign, the store must hold it: do not create a database on a mistyped path
    with open_store(args.storage, create=from_table) as store:
        common = {
            "train": args.train,
            "seed": args.seed,
            "encoding": args.encoding,
            "score_rows": score_rows,
            "replace": args.replace,
        }
        if from_table:
            stored = train_from_table(
                store,
                args.predictor_id,
                args.kind,
                args.table,
                args.space,
                args.target,
                **common,
            )
        else:
            stored = train_from_campaign(
                store,
                args.predictor_id,
                args.kind,
                args.campaign,
                args.target,
                source=args.source,
                **common,
            )
        shown = store.display_url
    result = {
        "predictor_id": stored.predictor_id,
        "kind": stored.kind,
        "target": stored.target,
        "encoding": stored.encoding,
        "space": stored.space,
        "training_ref": dict(stored.training_ref),
        "scores": dict(stored.scores),
        "storage": shown,
        "seconds": round(time.perf_counter() - start, 3),
    }
    _print(result, args.format)
    return 0


def _list(args: argparse.Namespace) -> int:
    from cosearch._report import WHOLE_JSON, format_table
    from cosearch.predictors.persist import list_predictors
    from cosearch.store import open_store

    with open_store(args.storage, create=False) as store:
        rows = list_predictors(store)
    if args.format == "json":
        _out(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        _out("(no predictors)")
        return 0
    table = []
    for r in rows:
        ref = r["training_ref"]
        origin = ref.get("campaign") or ref.get("path", "")
        table.append(
            {
                "id": r["predictor_id"],
                "kind": r["kind"],
                "target": r["target"],
                "encoding": r["encoding"],
                "trained on": f"{ref.get('rows', '?')} rows of {origin}",
                "spearman": r["scores"].get("spearman", ""),
                "created": r["created_at"],
            }
        )
    cols = ["id", "kind", "target", "encoding", "trained on", "spearman", "created"]
    _out(format_table(cols, table, hint=WHOLE_JSON))
    return 0
