"""The ``cosearch`` command: parsing and printing only; the work lives in the library.

Exit codes: 0 success, 2 bad input (config, ONNX, arguments, names), 1 anything else.
Errors are one line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from cosearch.errors import CosearchError, CosearchInputError

EXIT_OK, EXIT_ERROR, EXIT_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2, and takes no
    abbreviated options (``delete NAME --ye`` deleted as if it said ``--yes``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _no_screen_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-screen",
        action="store_true",
        help="ignore the campaign's [screen]: run the strategy's ordinary loop",
    )


def _storage_arg(p: argparse.ArgumentParser, config: str = "") -> None:
    """``--storage``; ``config`` names the config file whose ``storage`` key comes first."""
    first = f"the storage key of {config}, else " if config else ""
    p.add_argument(
        "--storage",
        metavar="URL",
        default=None,
        help=f"SQLAlchemy URL of the store (default: {first}$COSEARCH_STORAGE, else "
        "sqlite:///cosearch.db)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cosearch",
        description="Joint search of neural architectures and "
        "accelerator designs; every trial in one SQL store.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("run", help="create or resume a campaign from a TOML file")
    p.add_argument("config", metavar="CONFIG.toml")
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help="COMPLETE trials to reach (default: the config's trials)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--screen",
        type=int,
        default=None,
        metavar="N",
        help="score N more candidates with the [screen] sources (then stop unless --promote)",
    )
    p.add_argument(
        "--promote",
        type=int,
        default=None,
        metavar="K",
        help="score the K most promising screened candidates with the [evaluate] sources",
    )
    _no_screen_arg(p)
    _storage_arg(p, "CONFIG.toml")

    p = sub.add_parser("worker", help="join a campaign as one more worker")
    p.add_argument("name")
    p.add_argument(
        "--config",
        metavar="CONFIG.toml",
        default=None,
        help="the campaign's file: creates the campaign if the store lacks it. A "
        "module:function dataset runs only from this file (or when $COSEARCH_TRUSTED_DATASETS "
        "lists it), never from the store's copy",
    )
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help="COMPLETE trials to reach (default: the campaign's)",
    )
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument(
        "--heartbeat",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="heartbeat interval of running trials (default 10)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help=(
            "a running trial without a heartbeat for this long (or for its own worker's "
            "grace, if longer) is failed and retried (default 60)"
        ),
    )
    p.add_argument(
        "--reconnect",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for a PostgreSQL server that went away before ending; the "
        "trial running then is failed (default 300; 0 ends at once)",
    )
    _no_screen_arg(p)
    _storage_arg(p, "--config")

    p = sub.add_parser("delete", help="delete a campaign and everything it stored")
    p.add_argument("name")
    p.add_argument(
        "--yes",
        action="store_true",
        help="really delete (without it the command says what it would delete, and stops)",
    )
    _storage_arg(p)

    p = sub.add_parser("status", help="campaigns with trial counts by state and front size")
    p.add_argument("name", nargs="?")
    p.add_argument("--format", choices=("table", "json"), default="table")
    _storage_arg(p)

    p = sub.add_parser("pareto", help="the Pareto front of a campaign")
    p.add_argument("name")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument(
        "--fidelity",
        default=None,
        metavar="F|all",
        help="the front of the trials at fidelity F (e.g. 1.0), or of every fidelity; "
        "screened trials included (default: the campaign's own front)",
    )
    p.add_argument(
        "--least-violating",
        type=int,
        default=10,
        metavar="K",
        help="when no trial meets the constraints, show the K nearest misses (default 10)",
    )
    _storage_arg(p)

    p = sub.add_parser("show", help="one trial: parameters, metrics with sources, per-layer costs")
    p.add_argument("name")
    p.add_argument("trial", type=int, help="trial number")
    p.add_argument("--format", choices=("table", "json"), default="table")
    _storage_arg(p)

    p = sub.add_parser(
        "export",
        help="write a trial's architecture as ONNX",
        description="Write a trial's network as ONNX: with the weights it was scored with "
        "for a progressive_shrinking (OFA) trial (its supernet checkpoint, BatchNorm "
        "recalibrated), the model file's for onnx_file, else a deterministic "
        "initialization.",
    )
    p.add_argument("name")
    p.add_argument("trial", type=int, help="trial number")
    p.add_argument("--onnx", required=True, metavar="FILE")
    p.add_argument(
        "--structure-only",
        action="store_true",
        help="write the stored graph whose weights are inputs (no data)",
    )
    _storage_arg(p)

    p = sub.add_parser("compare", help="campaigns side by side: hypervolume vs trials")
    p.add_argument(
        "names",
        nargs="+",
        metavar="NAME[@URL]",
        help="campaigns; NAME@URL reads one from another database",
    )
    p.add_argument("--plot", metavar="FILE.png", default=None)
    p.add_argument(
        "--fraction",
        type=float,
        default=0.95,
        help="report trials needed to reach this fraction of the best hypervolume",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    _storage_arg(p)

    p = sub.add_parser("query", help="run one read-only SQL statement on the store")
    p.add_argument("sql")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _storage_arg(p)

    p = sub.add_parser("dashboard", help="serve optuna-dashboard on the store")
    p.add_argument("name", nargs="?")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default: this machine only). optuna-dashboard asks "
        "nobody for a password, and anyone who reaches it can edit and delete studies and "
        "their artifacts: serve other hosts only on a network you trust",
    )
    p.add_argument("--port", type=int, default=8080)
    _storage_arg(p)

    p = sub.add_parser("hw", help="hardware cost of any ONNX model")
    hw_sub = p.add_subparsers(dest="hw_command", parser_class=_Parser, metavar="HWCOMMAND")
    p = hw_sub.add_parser("eval", help="evaluate MODEL.onnx on an accelerator")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument(
        "--accelerator",
        required=True,
        metavar="TEMPLATE[:key=value,...]",
        help="e.g. systolic:pe_rows=32,pe_cols=32,dataflow=os or measured:cpu",
    )
    p.add_argument("--cost-model", default=None, help="default: the template's own model")
    p.add_argument("--batch", type=int, default=None, help="fix a symbolic batch dimension")
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="fix the symbolic input dimension NAME (e.g. --dim seq=128; repeatable); "
        "symbolic dimensions not fixed take --batch on axis 0, else 1",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")

    from cosearch.predictors._cli import add_parsers as add_predictor_parsers

    add_predictor_parsers(sub)

    p = sub.add_parser(
        "examples",
        help="list the example campaigns shipped with cosearch, or print one",
        description="List the example campaigns, or print one's TOML: "
        "`cosearch examples quickstart > quickstart.toml` then `cosearch run quickstart.toml`.",
    )
    p.add_argument("name", nargs="?", default=None, help="the example to print")
    p.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="json: the list, or with NAME {name, searches, toml} (default: a table, or the TOML)",
    )

    for what in ("spaces", "strategies", "hwmodels"):
        p = sub.add_parser(what, help=f"list the registered {what}")
        if what == "spaces":
            p.add_argument(
                "name",
                nargs="?",
                default=None,
                help="one space: its parameters with search ranges, limits and meaning",
            )
        p.add_argument("--format", choices=("table", "json"), default="table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():  # restores the default display when main returns
        if "--debug" not in argv:
            warnings.showwarning = _one_line_warning
            _SHOWN.clear()
        return _main(argv)


#: the warnings this command printed: each once, however many places raise it
_SHOWN: set[str] = set()


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A warning as one ``warning:`` line, without the source file and line that Python's
    default display adds (``--debug`` keeps that)."""
    text = " ".join(str(message).split())
    if text not in _SHOWN:
        _SHOWN.add(text)
        print(f"warning: {text}", file=sys.stderr)


def _main(argv: list[str]) -> int:
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.version:
            from cosearch import __version__

            print(f"cosearch {__version__}")
            return EXIT_OK
        _check_storage(args)
        if not args.command:  # one line, as every other usage error
            raise _UsageError("no command given; `cosearch --help` lists the commands")
        from cosearch import _commands

        return int(getattr(_commands, "cmd_" + args.command)(args) or 0)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cosearch ... | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except CosearchInputError as exc:
        return _report(exc, EXIT_INPUT, debug)
    except UnicodeEncodeError as exc:  # bytes of another encoding in an argument (a file name
        # in Latin-1 works; a campaign name or SQL sent to the database does not)
        bad = exc.object[exc.start : exc.end] if isinstance(exc.object, str) else ""
        return _report(
            CosearchInputError(
                f"an argument holds bytes that are not UTF-8 ({bad!r} in "
                f"{exc.object!r}); campaign names, SQL and URLs must be UTF-8"
            ),
            EXIT_INPUT,
            debug,
        )
    except CosearchError as exc:
        return _report(exc, EXIT_ERROR, debug)
    except Exception as exc:  # noqa: BLE001 - the command line must end with one clear line
        return _report(exc, EXIT_ERROR, debug, prefix=f"{type(exc).__name__}: ")


def _check_storage(args: argparse.Namespace) -> None:
    """``--storage`` names a database that outlives the command: an empty value fell back to
    the default, and an in-memory SQLite one kept nothing (the config's ``storage`` key and
    ``$COSEARCH_STORAGE`` are checked where they are used: the store and ``run``)."""
    from cosearch.store import memory_url

    storage = getattr(args, "storage", None)
    if storage is not None and not storage.strip():
        raise _UsageError("--storage is empty; give a database URL or leave the option out")
    if storage and memory_url(storage):
        raise _UsageError(
            f"--storage {storage!r} is an in-memory database: nothing would be kept when the "
            "command ends; use sqlite:///PATH or a server database"
        )


def _report(exc: BaseException, code: int, debug: bool, prefix: str = "") -> int:
    if debug:
        traceback.print_exception(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    print(f"error: {prefix}{text}", file=sys.stderr)
    return code


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
