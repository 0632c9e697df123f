"""Bad input: one clear line, exit code 2, nothing changed; fuzzing of the two parsers that
read user files (campaign TOML and ONNX) for undocumented exceptions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cosearch
from cosearch.errors import ConfigError, OnnxImportError

from .conftest import QUICK_TOML, run_cli

GOOD = QUICK_TOML.format(name="fuzz", trials=3, seed=0, strategy="random")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_config_parser_fuzz_raises_only_config_error(text):
    try:
        cosearch.parse_config(text)
    except ConfigError:
        pass


_lines = GOOD.splitlines()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, len(_lines) - 1), max_size=4),
    st.lists(
        st.sampled_from(
            [
                '"x"',
                "-1",
                "0",
                "1e309",
                "[]",
                "{}",
                "true",
                '"ws"',
                "[0, 1]",
                '"area_mm2 <= -1"',
                "nan",
            ]
        ),
        min_size=4,
        max_size=4,
    ),
)
def test_config_mutations_raise_only_config_error(which, values):
    lines = list(_lines)
    for i, v in zip(which, values):
        if "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {v}"
    try:
        cosearch.parse_config("\n".join(lines))
    except ConfigError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_onnx_importer_fuzz_raises_only_onnx_import_error(tmp_path_factory, data):
    from cosearch.spaces.onnx_io import load_onnx

    path = tmp_path_factory.mktemp("fuzz") / "m.onnx"
    path.write_bytes(data)
    try:
        load_onnx(path)
    except OnnxImportError:
        pass


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 64))
def test_onnx_importer_on_corrupted_real_models(tmp_path_factory, offset, length):
    """Flip bytes in a real network's file: refused with OnnxImportError or still valid."""
    from cosearch.spaces.onnx_io import load_onnx

    space = cosearch.get_space("nb201", channels=4, cells_per_stage=1, input_size=8)
    arch = space.build(space.sample(__import__("numpy").random.default_rng(offset)))
    from cosearch.spaces.onnx_io import model_to_bytes, strip_weights

    data = bytearray(model_to_bytes(strip_weights(arch.onnx())))
    start = offset % len(data)
    for i in range(start, min(start + length, len(data))):
        data[i] ^= 0x5A
    path = tmp_path_factory.mktemp("corrupt") / "m.onnx"
    path.write_bytes(bytes(data))
    try:
        load_onnx(path)
    except OnnxImportError:
        pass


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small_db(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    cfg = d / "c.toml"
    cfg.write_text(GOOD)
    url = f"sqlite:///{d / 'c.db'}"
    assert run_cli("run", str(cfg), "--storage", url, "--no-progress").returncode == 0
    return d, url


@pytest.mark.parametrize(
    "case",
    [
        "malformed",
        "unknown_space",
        "unknown_strategy",
        "unknown_cost_model",
        "range",
        "inverted_range",
        "changed_config",
    ],
)
def test_bad_config_leaves_database_unchanged(small_db, case):
    d, url = small_db
    text = {
        "malformed": GOOD.replace("trials = 3", "trials = = 3"),
        "unknown_space": GOOD.replace('network = "nb201"', 'network = "resnet"'),
        "unknown_strategy": GOOD.replace('name = "random"', 'name = "annealing"'),
        "unknown_cost_model": GOOD.replace('"analytical:systolic"', '"analytical:magic"'),
        "range": GOOD + "\n[space.hw]\npe_rows = [0, 2000]\n",
        "inverted_range": GOOD + "\n[space.hw]\nclock_mhz = [900, 100]\n",
        "changed_config": GOOD.replace('accuracy = "maximize"', 'accuracy = "minimize"'),
    }[case]
    cfg = d / f"{case}.toml"
    cfg.write_text(text)
    db = d / "c.db"
    before = _digest(db)
    r = run_cli("run", str(cfg), "--storage", url, "--no-progress")
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert _digest(db) == before


def test_unreachable_database_url(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD)
    r = run_cli(
        "run",
        str(cfg),
        "--storage",
        "postgresql+psycopg://nobody:s3cret@127.0.0.1:9/none?connect_timeout=3",
    )
    assert r.returncode == 2 and "cannot open storage" in r.stderr
    assert r.stderr.count("\n") == 1
    # the message names the database but never prints its password
    assert "nobody:***@127.0.0.1:9/none" in r.stderr and "s3cret" not in r.stderr


def test_a_password_given_as_a_query_key_is_not_printed(tmp_path):
    """psycopg takes ?password=...; only user:password@ was masked, so this one was printed in
    every message, the resume hint and compare's JSON."""
    from cosearch.store import display_url

    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD)
    url = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=3&password=s3cret"
    r = run_cli("run", str(cfg), "--storage", url)
    assert r.returncode == 2 and "password=***" in r.stderr and "s3cret" not in r.stderr
    shown = display_url("postgresql+psycopg:///x?host=h&user=u&PASSWORD=s3cret&sslmode=require")
    assert "s3cret" not in shown and "sslmode=require" in shown
    shown = display_url("postgresql+psycopg://u:pw@h:notaport/x?sslpassword=s3cret")  # unparseable
    assert "s3cret" not in shown and ":pw@" not in shown


def test_the_stored_config_keeps_no_storage_password(tmp_path):
    """The store kept the config file's text as written, so a `storage` URL's password was in
    the campaigns table for every reader of the store (and of a file copy of it)."""
    import sqlite3

    from cosearch import Campaign, load_config
    from cosearch.store import open_store

    for written in (
        '"postgresql+psycopg://u:s3cret@db/x"',
        '"postgresql+psycopg://u:s3\\u0063ret@db/x"',
    ):
        cfg = tmp_path / "c.toml"
        cfg.write_text(f"storage = {written}\n" + GOOD)
        db = tmp_path / "local.db"
        db.unlink(missing_ok=True)
        c = Campaign(load_config(cfg), open_store(f"sqlite:///{db}"))
        c.study  # noqa: B018 - stores the campaign
        c.store.close()
        (text,) = sqlite3.connect(db).execute("SELECT config_toml FROM campaigns").fetchone()
        assert "s3cret" not in text and "s3\\u0063ret" not in text
        assert "postgresql+psycopg://u:***@db/x" in text
        back = Campaign.from_store(load_config(cfg).name, storage=f"sqlite:///{db}")
        assert back.config.storage == "postgresql+psycopg://u:***@db/x"
        back.store.close()


@pytest.mark.parametrize(
    "written",
    [
        "storage = 'postgresql+psycopg://u:s3cret@db/x'",
        '# postgresql+psycopg://u:s3cret@db/x\nstorage = "postgresql+psycopg://u:s3\\u0063ret@db/x"',
        'storage = "postgresql+psycopg://u@db/x?password=s3cret"  # a comment',
        '"storage" = "postgresql+psycopg://u:s3\\u0063ret@db/x"',
        'storage = """postgresql+psycopg://u:s3cret@\\\n    db/x"""',
    ],
)
def test_a_storage_password_is_masked_or_the_file_refused(tmp_path, written):
    """Masking guessed where the URL was written: a quoted key with escapes kept the
    password, a multi-line string was stored as TOML that no longer parsed (the campaign
    could not be joined). Either the stored copy parses back to the masked URL, or the file
    is refused before anything is stored."""
    import tomllib

    from cosearch.config import text_to_store

    text = written + "\n" + GOOD
    url = tomllib.loads(text)["storage"]
    try:
        out = text_to_store(text, url)
    except ValueError:
        cfg = tmp_path / "c.toml"
        cfg.write_text(text)
        r = run_cli("run", str(cfg), cwd=tmp_path)  # refused before connecting to it
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot mask" in r.stderr
        return
    assert "s3cret" not in out and "u0063" not in out
    assert tomllib.loads(out)["storage"] in (
        "postgresql+psycopg://u:***@db/x",
        "postgresql+psycopg://u@db/x?password=***",
    )


@pytest.mark.parametrize("create", [True, False])
def test_database_driver_not_installed(create):
    # mysql:// is a dialect SQLAlchemy knows; its driver is not installed: ModuleNotFoundError
    # and exit 1 before
    from cosearch.errors import StoreInputError
    from cosearch.store import open_store

    with pytest.raises(StoreInputError, match=r"driver is not installed") as info:
        open_store("mysql://u:s3cret@localhost/db", create=create)
    assert "s3cret" not in str(info.value)


def test_unwritable_storage_path(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD)
    r = run_cli("run", str(cfg), "--storage", f"sqlite:///{tmp_path}/missing/dir/x.db")
    assert r.returncode == 2 and "does not exist" in r.stderr


@pytest.mark.parametrize("kind", ["truncated", "not_onnx", "external_outside", "absurd"])
def test_bad_onnx_files_exit_2(tmp_path, kind):
    from onnx import TensorProto, helper

    path = tmp_path / "m.onnx"
    if kind in ("truncated", "not_onnx"):
        space = cosearch.get_space("nb201", channels=4, cells_per_stage=1, input_size=8)
        data = (
            space.build(space.sample(__import__("numpy").random.default_rng(0)))
            .onnx()
            .SerializeToString()
        )
        path.write_bytes(data[: len(data) // 3] if kind == "truncated" else b"hello" * 50)
    else:
        dim = 2**40 if kind == "absurd" else 4
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, dim, 4])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4, 1, 1], [0.0] * 16)
        if kind == "external_outside":
            w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4, 1, 1])
            w.data_location = TensorProto.EXTERNAL
            e = w.external_data.add()
            e.key, e.value = "location", "../outside.bin"
        node = helper.make_node("Conv", ["x", "w"], ["y"])
        model = helper.make_model(
            helper.make_graph([node], "g", [x], [y], [w]),
            opset_imports=[helper.make_opsetid("", 17)],
        )
        path.write_bytes(model.SerializeToString())
    r = run_cli("hw", "eval", str(path), "--accelerator", "systolic", "--format", "json")
    assert r.returncode == 2, (kind, r.stderr)
    assert r.stderr.count("\n") == 1 and str(path) in r.stderr


def _campaign_names(url):
    with cosearch.open_store(url, create=False) as store:
        return store.campaign_names()


@pytest.mark.parametrize(
    "case",
    [
        "device_not_measurable",
        "screen_predictor_missing",
        "analytical_measured",
        "unknown_model_version",
        "constraint_bound_typed_as_text",
    ],
)
def test_a_new_campaign_with_bad_sources_is_not_stored(small_db, case):
    # checked before the campaign's row and study exist, so fixing the file and running it
    # again is not refused as "a different config"
    d, url = small_db
    fresh = GOOD.replace('name = "fuzz"', f'name = "{case}"')
    device = fresh.replace('hardware = "systolic"', 'hardware = "device"').replace(
        'constraints = ["area_mm2 <= 4"]', ""
    )
    text = {
        "device_not_measurable": device.replace('"analytical:systolic"', '"measured:pixel3"')
        + '\n[space.hw]\ndevice = "pixel3"\n',
        "screen_predictor_missing": fresh + '\n[screen]\naccuracy = "predictor:nope"\n',
        "analytical_measured": device.replace('"analytical:systolic"', '"analytical:measured"'),
        "unknown_model_version": fresh.replace('"analytical:systolic"', '"analytical:systolic/v9"'),
        "constraint_bound_typed_as_text": fresh.replace("area_mm2 <= 4", "area_mm2 <= four"),
    }[case]
    cfg = d / f"{case}.toml"
    cfg.write_text(text)
    before = _campaign_names(url)
    r = run_cli("run", str(cfg), "--storage", url, "--no-progress")
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert _campaign_names(url) == before


def test_a_constraint_bound_changed_in_its_seventh_digit_is_a_changed_config(small_db):
    d, url = small_db
    cfg = d / "bound.toml"
    cfg.write_text(GOOD.replace("area_mm2 <= 4", "area_mm2 <= 4.0000001"))
    r = run_cli("run", str(cfg), "--storage", url, "--no-progress")
    assert r.returncode == 2 and "different constraints" in r.stderr, r.stderr


def test_a_config_file_with_a_byte_order_mark_reads(tmp_path):
    cfg = tmp_path / "bom.toml"
    cfg.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert cosearch.load_config(cfg).name == "fuzz"


def test_log_ranges(tmp_path):
    from cosearch.spaces import get_hardware_space

    # the README's example: the default range's step does not block a log range
    space = get_hardware_space("systolic", clock_mhz={"low": 200, "high": 800, "log": True})
    assert space.distributions()["hw.clock_mhz"].log
    with pytest.raises(ConfigError, match="log must be true or false; got 'yes'"):
        get_hardware_space("systolic", dram_gbps={"low": 1, "high": 64, "log": "yes"})


def test_worker_flags_and_configs_are_checked_before_the_store_is_touched(small_db, tmp_path):
    d, url = small_db
    for flags, needle in (
        (["--trials", "0"], "--trials must be an int in [1, 10000000]; got 0"),
        (["--trials", "10000001"], "--trials must be an int in [1, 10000000]"),
        (["--heartbeat", "nan"], "must exceed --heartbeat"),
        (["--grace", "nan"], "must exceed --heartbeat"),
        (["--reconnect", "-1"], "--reconnect must be a number of seconds >= 0; got -1.0"),
        (["--reconnect", "inf"], "--reconnect must be a number of seconds >= 0; got inf"),
    ):
        r = run_cli("worker", "fuzz", "--storage", url, *flags)
        assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1, r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("trials = 3", "trials = -3"))
    new_db = tmp_path / "new.db"
    r = run_cli("worker", "fuzz", "--config", str(bad), "--storage", f"sqlite:///{new_db}")
    assert r.returncode == 2 and "trials" in r.stderr
    assert not new_db.exists()


def test_read_commands_leave_a_database_cosearch_did_not_make_alone(tmp_path):
    import sqlite3

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    for db in (foreign, empty):
        before = _digest(db)
        for args in (["status"], ["query", "SELECT 1"], ["pareto", "x"]):
            r = run_cli(*args, "--storage", f"sqlite:///{db}")
            assert r.returncode == 2 and "is not a cosearch store" in r.stderr, r.stderr
        assert _digest(db) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "foreign.db"]


def test_no_screen_needs_no_screen_sources(tmp_path):
    # examples/screen_nb201.toml's first step runs the ordinary loop to train the predictor
    # its [screen] table names, so that predictor cannot be checked then
    example = Path(__file__).resolve().parents[1] / "examples" / "screen_nb201.toml"
    url = f"sqlite:///{tmp_path / 's.db'}"
    r = run_cli("run", str(example), "--no-screen", "--trials", "2", "--no-progress",
                "--storage", url)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_cli("run", str(example), "--no-progress", "--storage", url)
    assert r.returncode == 2 and "no predictor 'nb201-acc'" in r.stderr
    assert _campaign_names(url) == ["screen_nb201"]


def test_nan_strategy_options_and_one_value_log_ranges():
    import math

    import numpy as np

    from cosearch.spaces import get_hardware_space

    # nan passed every range check: marl then failed 20 trials, evolution ran silently
    for name, option in (("marl", "lr"), ("nsga2", "crossover_prob"), ("bayesian", "beyond")):
        with pytest.raises(ConfigError, match=f"'{option}' option of strategy {name}"):
            cosearch.get_strategy(name, **{option: math.nan})
    # mutation_prob's "automatic" is -1 exactly: -0.5 was taken as automatic too, and OFA
    # read 0 as automatic while evolution read it as "exactly one parameter changes"
    for name in ("nsga2", "evolution", "progressive_shrinking"):
        with pytest.raises(ConfigError, match=r"must be a float in \[0, 1\] or -1\. Got -0\.5"):
            cosearch.get_strategy(name, mutation_prob=-0.5)
        assert cosearch.get_strategy(name, mutation_prob=-1).params["mutation_prob"] == -1.0
        assert cosearch.get_strategy(name, mutation_prob=0).params["mutation_prob"] == 0.0
    from cosearch.search._ofa_search import _Variation
    from cosearch.spaces._params import Param

    params = {f"net.p{i}": Param.integer(f"p{i}", 0, 9, limits=(0, 9)) for i in range(4)}
    rng = np.random.default_rng(0)
    parent = {k: 0 for k in params}
    for _ in range(20):  # 0: each child differs from its parent in exactly one parameter
        child = _Variation(params, 0.0).mutate(parent, rng)
        assert sum(child[k] != 0 for k in params) == 1
    # a log range narrowed to one value: exp(log(5.0)) came back as 4.999999999999999, which
    # the weight-sharing strategies then refused as out of range
    space = get_hardware_space("systolic", dram_gbps=5.0)
    rng = np.random.default_rng(0)
    assert {space.sample(rng)["hw.dram_gbps"] for _ in range(100)} == {5.0}


def test_a_strategy_that_refuses_its_options_at_start_leaves_no_campaign(tmp_path):
    # marl checks its weights against the objectives when it starts: the campaign it had just
    # created stayed, and the corrected file was refused as "a different campaign"
    bad = tmp_path / "bad.toml"
    text = QUICK_TOML.format(name="w", trials=3, seed=0, strategy="marl")
    bad.write_text(text + "weights = [1, 1]\n")
    url = f"sqlite:///{tmp_path / 'w.db'}"
    r = run_cli("run", str(bad), "--no-progress", "--storage", url)
    assert r.returncode == 2 and "one weight per objective" in r.stderr, r.stderr
    assert _campaign_names(url) == []
    good = tmp_path / "good.toml"
    good.write_text(text)
    r = run_cli("run", str(good), "--no-progress", "--storage", url)
    assert r.returncode == 0, r.stderr
    assert _campaign_names(url) == ["w"]


# -- found by fuzzing the command line and the Python API (2026-12-07) ------------------------
def test_export_never_writes_over_the_store_or_a_file_that_is_not_onnx(small_db, tmp_path):
    """`export NAME 1 --onnx cosearch.db` replaced the database with the model (exit 0)."""
    d, url = small_db
    db = d / "c.db"
    toml = d / "c.toml"
    before = (_digest(db), _digest(toml))
    for target, needle in ((db, "it is the store's database file"), (toml, "not an ONNX model")):
        r = run_cli("export", "fuzz", "0", "--onnx", str(target), "--storage", url)
        assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert (_digest(db), _digest(toml)) == before
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")  # an existing .onnx file is replaced, as before
    assert run_cli("export", "fuzz", "0", "--onnx", str(out), "--storage", url).returncode == 0
    assert out.stat().st_size > 100
    again = tmp_path / "model"  # no suffix: written once, then replaced by the same command
    for _ in range(2):
        assert (
            run_cli("export", "fuzz", "0", "--onnx", str(again), "--storage", url).returncode == 0
        )


def test_storage_urls_that_would_lose_or_misplace_data_are_refused(small_db, tmp_path):
    d, _ = small_db
    cfg = str(d / "c.toml")
    foreign = tmp_path / "foreign.db"
    import sqlite3

    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE important (x)")
        conn.execute("INSERT INTO important VALUES (42)")
    before = _digest(foreign)
    for args, needle in (
        (["run", cfg, "--storage", "sqlite://"], "is an in-memory database"),
        (["run", cfg, "--storage", "sqlite:///"], "names no database file"),
        (["status", "--storage", ""], "--storage is empty"),
        (["run", cfg, "--storage", f"sqlite:///{foreign}"], "is another program's database"),
        (
            ["status", "--storage", "postgresql://u:secret@127.0.0.1:notaport/db"],
            "not a database URL: 'postgresql://u:***@127.0.0.1:notaport/db'",
        ),
    ):
        r = run_cli(*args)
        assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert "secret" not in r.stderr
    assert _digest(foreign) == before
    memory = tmp_path / "mem.toml"
    memory.write_text('storage = "sqlite://"\n' + GOOD)
    r = run_cli("run", str(memory))
    assert r.returncode == 2 and "storage 'sqlite://' is an in-memory database" in r.stderr
    kept = tmp_path / "kept.db"  # --storage wins over the key, as always
    assert run_cli("run", str(memory), "--storage", f"sqlite:///{kept}").returncode == 0
    memory_env = {"COSEARCH_STORAGE": "sqlite://"}
    assert run_cli("--version", env=memory_env).returncode == 0  # needs no store
    r = run_cli("status", env=memory_env)
    assert r.returncode == 2 and "$COSEARCH_STORAGE 'sqlite://' is an in-memory" in r.stderr
    missing = tmp_path / "missing.db"
    r = run_cli(
        "predictor", "train", "--id", "p", "--kind", "gbrt", "--campaign", "fuzz",
        "--target", "latency_ms", "--storage", f"sqlite:///{missing}",
    )  # fmt: skip
    assert r.returncode == 2 and not missing.exists(), r.stderr


def test_a_worker_refuses_a_config_that_differs_from_the_stored_campaign(small_db, tmp_path):
    """It ran the stored campaign and ignored the file, where `run` refuses."""
    d, url = small_db
    other = tmp_path / "seed5.toml"
    other.write_text(GOOD.replace("seed = 0", "seed = 5"))
    before = _digest(d / "c.db")
    r = run_cli("worker", "fuzz", "--config", str(other), "--trials", "4", "--storage", url)
    assert r.returncode == 2 and "with a different seed" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and _digest(d / "c.db") == before


def test_special_files_huge_counts_odd_bytes_and_abbreviations_get_one_line(small_db, tmp_path):
    import os

    d, url = small_db
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    deep = tmp_path / "deep.toml"
    deep.write_text(GOOD + "\n[screen]\nx = " + "[" * 3000 + "]" * 3000 + "\n")
    huge = tmp_path / "huge.toml"  # a sparse 300 MB file: it was read and parsed (14 s, 1 GB)
    huge.write_text(GOOD)
    os.truncate(huge, 300 * 2**20)
    table = tmp_path / "t.csv"
    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    rows = [f"|{op}~0|+|none~0|none~1|+|none~0|none~1|none~2|,{i + 1}" for i, op in enumerate(ops)]
    table.write_text("arch_str,lat_a\n" + "\n".join(rows) + "\n")
    cases = (
        (["run", str(fifo)], "not a regular file"),
        (["run", str(deep)], "nested too deeply"),
        (["run", str(huge)], "larger than 8 MiB"),
        (["run", str(d / "c.toml"), "--trials", "99999999999999999999"], "--trials must be an"),
        (["run", str(d / "c.toml"), "--storage", url, "--screen", "99999999999"], "--screen must"),
        (
            ["predictor", "eval", "--table", str(table), "--space", "nb201", "--target", "lat_a"]
            + ["--train", "3", "--seeds", "99999999999999999999"],
            "seeds must be an int in [1, 10000]",
        ),
        (
            ["predictor", "train", "--id", "p", "--kind", "gbrt", "--table", str(table)]
            + ["--space", "nb201", "--target", "lat_a", "--source", "x", "--storage", url],
            "a --table has none",
        ),
        (
            ["hw", "eval", "m.onnx", "--accelerator", "systolic", "--dim", "H=4", "--dim", "H=8"],
            "--dim H is given twice",
        ),
        (["status", "caf\udcff", "--storage", url], "holds bytes that are not UTF-8"),
        (["delete", "fuzz", "--ye", "--storage", url], "unrecognized arguments: --ye"),
    )
    for args, needle in cases:
        r = run_cli(*args, timeout=60)
        assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1, (args, r)
    assert run_cli("status", "--storage", url).returncode == 0  # --ye deleted nothing
    latin = tmp_path / "caf\udce9.toml"  # a Latin-1 file name is a file name all the same
    latin.write_text(GOOD.replace('name = "fuzz"', 'name = "latin"'))
    r = run_cli("run", str(latin), "--storage", f"sqlite:///{tmp_path / 'l.db'}", "--no-progress")
    assert r.returncode == 0, r.stderr


def test_late_config_errors_are_caught_with_their_file_and_line(tmp_path):
    darts = Path(__file__).parents[1] / "examples" / "darts_digits.toml"
    text = darts.read_text().replace('dataset = "digits"', 'dataset = "x"', 1)
    with pytest.raises(ConfigError, match=r"d\.toml:\d+: .*unknown dataset 'x'"):
        cosearch.parse_config(text, path="d.toml")
    no_path = GOOD.replace('network = "nb201"', 'network = "onnx_file"')
    with pytest.raises(ConfigError, match=r"o\.toml:\d+: the onnx_file space needs"):
        cosearch.parse_config(no_path, path="o.toml")
    screen = GOOD + '\n[screen]\ncost = "analytical:systolic"\ncandidates = 5\n'
    with pytest.raises(ConfigError, match=r"got 10 \(its default; set promote\)"):
        cosearch.parse_config(screen)
    with pytest.raises(ConfigError, match="config text must be a str"):
        cosearch.parse_config(None)  # type: ignore[arg-type]


def test_an_onnx_conv_whose_channels_do_not_match_its_weight_is_refused(tmp_path):
    """ONNX's shape inference lets it through; onnxruntime refuses to run it, and a campaign
    on it failed 20 trials (exit 1) instead of being refused up front."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])],
        [w],
    )
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(OnnxImportError, match="its input has 4 channels, but its weight"):
        cosearch.hwmodels.extract_layers(onnx.load(path))
    r = run_cli("hw", "eval", str(path), "--accelerator", "systolic")
    assert r.returncode == 2 and "its input has 4 channels" in r.stderr


def test_cli_warnings_are_one_line_each(small_db):
    d, url = small_db
    r = run_cli("status", "--storage", url + "?mode=ro")
    warned = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert r.returncode == 0 and len(warned) == 1 and len(r.stderr.splitlines()) == 1, r.stderr


def test_the_python_api_names_wrong_argument_types(small_db):
    import numpy as np

    from cosearch.hwmodels import extract_layers, get_cost_model
    from cosearch.spaces import get_hardware_space, get_space

    net, hw = get_space("nb201"), get_hardware_space("systolic")
    rng = np.random.default_rng(0)
    model = net.build(net.sample(rng)).onnx()
    layers, acc = extract_layers(model), hw.build(hw.sample(rng))
    with pytest.raises(ConfigError, match="parameters must be a mapping"):
        net.build(None)  # type: ignore[arg-type]
    cost = get_cost_model("systolic")
    for args, needle in (
        ((layers, "systolic"), "takes an Accelerator"),
        ((model, acc), "takes the network's layers"),
        ((["x"], acc), "takes Layer objects"),
    ):
        with pytest.raises(TypeError, match=needle):
            cost.evaluate(*args)
    d, url = small_db
    c = cosearch.Campaign.from_store("fuzz", storage=url)
    for bad in (8.9, "7", float("nan"), 0, True):
        with pytest.raises(ConfigError, match="n_trials must be an int"):
            c.run(bad)
    with pytest.raises(ConfigError, match="k must be an int >= 1"):
        c.least_violating(0)
