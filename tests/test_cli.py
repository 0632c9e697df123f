"""The `cosearch` command end to end: outputs and exit codes (0 ok, 2 bad input, 1 other)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from .conftest import run_cli


@pytest.fixture(scope="module")
def campaign_db(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    from .conftest import QUICK_TOML

    cfg = d / "c.toml"
    cfg.write_text(QUICK_TOML.format(name="cli", trials=15, seed=3, strategy="random"))
    url = f"sqlite:///{d / 'cli.db'}"
    r = run_cli("run", str(cfg), "--storage", url, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "Pareto front of 'cli'" in r.stdout
    return d, url, cfg


def test_run_prints_front_table(campaign_db):
    d, url, cfg = campaign_db
    r = run_cli("run", str(cfg), "--storage", url, "--no-progress")  # resume: nothing to do
    assert r.returncode == 0
    assert "15 trials complete (0 new" in r.stderr
    header = [line for line in r.stdout.splitlines() if line.startswith("trial")][0]
    for col in ("accuracy", "latency_ms", "energy_mj", "area_mm2", "architecture"):
        assert col in header


def test_cut_cells_name_the_command_that_prints_them_whole(campaign_db):
    import shlex

    import cosearch

    d, url, cfg = campaign_db
    r = run_cli("run", str(cfg), "--storage", url, "--no-progress")
    table = r.stdout.splitlines()
    assert any("…" in line for line in table)  # accelerator specs are longer than a cell
    last = table[-1]
    assert last.startswith("(cells over 60 characters are cut at …;")
    cmd = shlex.split(last.split("`")[1])
    assert cmd[:3] == ["cosearch", "pareto", "cli"] and cmd[cmd.index("--storage") + 1] == url
    whole = run_cli(*cmd[1:])
    assert whole.returncode == 0, whole.stderr
    rows = list(csv.DictReader(io.StringIO(whole.stdout)))
    specs = [row["accelerator"] for row in rows]
    assert specs and all(len(s) > 60 for s in specs)
    for spec in specs:  # whole, so the documented round trip works
        acc = cosearch.parse_accelerator(spec)
        assert acc.template == "systolic" and acc.spec() == spec


def test_status(campaign_db):
    _, url, _ = campaign_db
    r = run_cli("status", "--storage", url, "--format", "json")
    assert r.returncode == 0, r.stderr
    (info,) = json.loads(r.stdout)
    assert info["name"] == "cli" and info["trials"]["COMPLETE"] == 15
    r = run_cli("status", "cli", "--storage", url)
    assert r.returncode == 0 and "objectives: accuracy (maximize)" in r.stdout


def test_pareto_formats(campaign_db):
    _, url, _ = campaign_db
    js = run_cli("pareto", "cli", "--storage", url, "--format", "json")
    rows = json.loads(js.stdout)
    assert rows and all({"trial", "accuracy", "latency_ms", "energy_mj"} <= set(r) for r in rows)
    cs = run_cli("pareto", "cli", "--storage", url, "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(cs.stdout)))
    assert [int(r["trial"]) for r in parsed] == [r["trial"] for r in rows]


def test_show_and_export(campaign_db, tmp_path):
    _, url, _ = campaign_db
    r = run_cli("show", "cli", "3", "--storage", url, "--format", "json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    metrics = {m["metric"]: m for m in info["measurements"]}
    assert metrics["accuracy"]["source"] == "benchmark:nb201/cifar10"
    assert info["layers"] and sum(lc["macs"] for lc in info["layers"]) == metrics["macs"]["value"]
    out = tmp_path / "m.onnx"
    r = run_cli("export", "cli", "3", "--onnx", str(out), "--storage", url)
    assert r.returncode == 0, r.stderr
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: np.zeros((1, 3, 32, 32), np.float32)})[0]
    assert y.shape == (1, 10)
    r = run_cli("show", "cli", "3", "--storage", url)
    assert "per-layer costs" in r.stdout and "benchmark:nb201/cifar10" in r.stdout


def test_query_read_and_refused_write(campaign_db):
    _, url, _ = campaign_db
    r = run_cli(
        "query", "SELECT COUNT(*) AS n FROM evaluations", "--storage", url, "--format", "json"
    )
    assert r.returncode == 0 and json.loads(r.stdout) == [{"n": 15}]
    path = url.removeprefix("sqlite:///")
    before = open(path, "rb").read()
    r = run_cli("query", "SELECT * FROM evaluations WHERE 0", "--storage", url)
    assert r.returncode == 0 and r.stdout.strip() == "(no rows)"
    r = run_cli("query", "DELETE FROM measurements", "--storage", url)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "read-only" in r.stderr
    assert open(path, "rb").read() == before


def test_query_json_keeps_every_row_and_digit(campaign_db):
    # a join's repeated names, a BLOB column, and pandas' 10 decimals (1.5e-12 printed as 0.0)
    _, url, _ = campaign_db
    sql = (
        "SELECT t.trial_id, v.*, 1.5e-12 AS tiny, a.onnx FROM trials t "
        "JOIN trial_values v ON v.trial_id = t.trial_id "
        "JOIN evaluations e ON e.trial_id = t.trial_id "
        "JOIN architectures a ON a.digest = e.architecture_digest LIMIT 2"
    )
    r = run_cli("query", sql, "--storage", url, "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 2 and rows[0]["trial_id"] == rows[0]["trial_id.1"]
    assert rows[0]["tiny"] == 1.5e-12
    model = onnx.load_model_from_string(bytes.fromhex(rows[0]["onnx"]))
    assert model.graph.node
    r = run_cli("query", sql, "--storage", url, "--format", "csv")
    assert r.returncode == 0 and "trial_id.1" in r.stdout.splitlines()[0]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "missing.toml"], "not found"),
        (["status", "--storage", "sqlite:////nonexistent/dir/x.db"], "no database"),
        (["pareto", "nope"], "no campaign 'nope'"),
        (["show", "cli", "999"], "no trial 999"),
        (["frobnicate"], "invalid choice"),
        (["pareto", "cli", "--format", "xml"], "invalid choice"),
        ([], "no command given"),  # printed the 30-line usage
    ],
)
def test_bad_input_exits_2_with_one_line(campaign_db, args, needle):
    _, url, _ = campaign_db
    if args and "--storage" not in args and args[0] != "frobnicate":
        args = [*args, "--storage", url]
    r = run_cli(*args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


def test_bad_config_exit_2_names_line(tmp_path):
    p = tmp_path / "bad.toml"
    from .conftest import QUICK_TOML

    p.write_text(
        QUICK_TOML.format(name="b", trials=5, seed=0, strategy="random").replace(
            '"area_mm2 <= 4"', '"area <= 4"'
        )
    )
    r = run_cli("run", str(p), "--storage", f"sqlite:///{tmp_path / 'b.db'}")
    assert r.returncode == 2 and r.stderr.startswith(f"error: {p}:13:")
    assert not (tmp_path / "b.db").exists()


def test_debug_shows_traceback(tmp_path):
    r = run_cli("--debug", "run", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_listings():
    for what, needle in (("spaces", "nb201"), ("strategies", "nsga2"), ("hwmodels", "systolic")):
        r = run_cli(what)
        assert r.returncode == 0 and needle in r.stdout


def test_spaces_name_lists_the_parameters_a_campaign_can_search():
    r = run_cli("spaces", "systolic")
    assert r.returncode == 0, r.stderr
    assert "priced by default with the systolic cost model" in r.stdout
    row = next(line for line in r.stdout.splitlines() if line.startswith("hw.pe_rows "))
    assert "[4, 64], step 4" in row and "[1, 1024]" in row and "PE array rows" in row

    r = run_cli("spaces", "nb201", "--format", "json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["kind"] == "network" and info["options"]["channels"] == 16
    names = [p["parameter"] for p in info["parameters"]]
    assert names == [
        f"net.{e}" for e in ("edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2")
    ]
    assert '"nor_conv_3x3"' in info["parameters"][0]["search range"]

    r = run_cli("spaces", "sytolic")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "unknown space 'sytolic'" in r.stderr
    assert "systolic" in r.stderr  # the valid names are listed


def test_dashboard_serves_the_store(campaign_db, tmp_path):
    import urllib.error
    import urllib.request

    from .conftest import serve_dashboard

    _, url, _ = campaign_db
    proc, port = serve_dashboard("cli", url, tmp_path / "dashboard.log")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as resp:
            body = json.loads(resp.read())
        (study,) = body["study_summaries"]
        assert study["study_name"] == "cli"
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/studies/{study['study_id']}", timeout=10
        ) as r:
            detail = json.loads(r.read())
        assert len(detail["trials"]) == 15
        assert detail["objective_names"] == ["accuracy", "latency_ms", "energy_mj"]
        # constraint values reach the dashboard (it greys out infeasible trials)
        assert all(len(t["constraints"]) == 2 for t in detail["trials"])
        keys = {a["key"] for a in detail["trials"][0]["user_attrs"]}
        assert {"metrics", "sources", "architecture", "accelerator", "worker"} <= keys
        # a second dashboard on the same port: one line, exit 2 (was an OSError, exit 1)
        r = run_cli("dashboard", "--storage", url, "--port", str(port))
        assert r.returncode == 2
        assert r.stderr == f"error: port {port} on 127.0.0.1 is in use; pass another --port\n"
        assert "warning" not in (tmp_path / "dashboard.log").read_text()  # this machine only
        # a page on another name that resolves to 127.0.0.1 (DNS rebinding) is refused: its
        # Host header names the other machine; it could delete studies through the API
        for host, code in (("evil.example", 403), (f"evil.example:{port}", 403)):
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/studies", headers={"Host": host}
            )
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=5)
            assert err.value.code == code and b"loopback" in err.value.read()
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", "[::1]:8080"):
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/studies", headers={"Host": host}
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert resp.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dashboard_on_every_interface_warns(campaign_db):
    """optuna-dashboard has no login and its API deletes studies and artifacts: serving it
    beyond this machine says so."""
    import socket
    import subprocess
    import sys

    from .conftest import ROOT

    _, url, _ = campaign_db
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "cosearch.cli", "dashboard", "--storage", url]
    proc = subprocess.Popen(
        cmd + ["--host", "0.0.0.0", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [proc.stderr.readline(), proc.stderr.readline()]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert lines[0].startswith("optuna-dashboard on ")
    assert lines[1].startswith("warning: listening on 0.0.0.0: anyone who reaches this port")


@pytest.mark.slow
def test_quickstart_200_trials_open_in_plain_optuna(tmp_path):
    """The README's main job: 200 COMPLETE trials that plain Optuna reads back in full."""
    import optuna

    from .conftest import ROOT

    url = f"sqlite:///{tmp_path / 'q.db'}"
    r = run_cli(
        "run", str(ROOT / "examples" / "quickstart.toml"), "--storage", url, "--no-progress"
    )
    assert r.returncode == 0, r.stderr
    assert "200 trials complete (200 new, 0 failed)" in r.stderr
    assert "Pareto front of 'quickstart'" in r.stdout
    study = optuna.load_study(study_name="quickstart", storage=url)
    assert len(study.trials) == 200
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for t in study.trials:
        assert len(t.params) == 15 and len(t.values) == 3
        assert set(t.user_attrs["sources"]) >= {"accuracy", "latency_ms", "energy_mj", "area_mm2"}
    # the Pareto front honours the area constraint
    front = study.best_trials
    assert front and all(t.user_attrs["metrics"]["area_mm2"] <= 4 for t in front)


@pytest.fixture(scope="module")
def nb201_onnx(tmp_path_factory):
    import cosearch

    space = cosearch.get_space("nb201")
    arch = space.build(
        space.from_string(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
            "skip_connect~2|"
        )
    )
    path = tmp_path_factory.mktemp("hw") / "m.onnx"
    onnx.save(arch.onnx(), str(path))
    return path


@pytest.mark.parametrize(
    "spec",
    ["systolic:pe_rows=32,pe_cols=32,dataflow=os", "row_stationary", "heterogeneous", "roofline"],
)
def test_hw_eval_json(nb201_onnx, spec):
    r = run_cli("hw", "eval", str(nb201_onnx), "--accelerator", spec, "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(HW_EVAL_KEYS) <= set(out)
    assert out["latency_ms"] > 0 and out["layers"]
    assert sum(lc["macs"] for lc in out["layers"]) == out["macs"] > 0


#: the keys issue 4 says `hw eval --format json` has
HW_EVAL_KEYS = (
    "latency_cycles",
    "compute_cycles",
    "latency_ms",
    "energy_mj",
    "area_mm2",
    "utilization",
    "violations",
    "layers",
)


def test_hw_eval_measured_cpu(nb201_onnx):
    r = run_cli("hw", "eval", str(nb201_onnx), "--accelerator", "measured:cpu", "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["latency_ms"] > 0 and out["spread_ms"] >= 0 and out["repeats"] == 50
    # every key of an analytical result (it lacked eight); a timed run has no cycles, energy,
    # area, traffic or MACs, so they are null
    r = run_cli("hw", "eval", str(nb201_onnx), "--accelerator", "systolic", "--format", "json")
    analytical = json.loads(r.stdout)
    assert set(analytical) - {"accelerator", "source"} <= set(out)
    assert set(HW_EVAL_KEYS) <= set(out) and out["energy_mj"] is None and out["macs"] is None
    r = run_cli("hw", "eval", str(nb201_onnx), "--accelerator", "measured:cpu")
    assert r.returncode == 0 and "energy_mj" not in r.stdout and "latency_ms" in r.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--accelerator", "systolic:pe_rows=0"], "pe_rows"),
        (["--accelerator", "warp:x=1"], "unknown hardware space 'warp'"),
        (["--accelerator", "systolic", "--cost-model", "nope"], "unknown cost model"),
    ],
)
def test_hw_eval_bad_input(nb201_onnx, args, needle):
    r = run_cli("hw", "eval", str(nb201_onnx), *args)
    assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1


def test_hw_eval_measures_a_model_saved_with_external_weights(nb201_onnx, tmp_path):
    # onnxruntime needs the weights, which stay unread references for the analytical models;
    # run from another folder, so a path relative to the working directory would not do
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save(
        onnx.load(str(nb201_onnx)),
        str(folder / "net.onnx"),
        save_as_external_data=True,
        location="net.data",
        size_threshold=0,
    )
    r = run_cli(
        "hw",
        "eval",
        str(folder / "net.onnx"),
        "--accelerator",
        "measured:cpu",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["latency_ms"] > 0 and r.stderr == ""


def test_hw_eval_fixes_named_symbolic_dimensions(tmp_path):
    w = onnx.numpy_helper.from_array(np.zeros((64, 32), np.float32), "w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", "seq", 64])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [w],
    )
    path = tmp_path / "seq.onnx"
    onnx.save(
        onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(path)
    )

    def macs(*extra):
        r = run_cli(
            "hw", "eval", str(path), "--accelerator", "roofline", "--format", "json", *extra
        )
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["macs"]

    assert macs() == 64 * 32  # unfixed symbols take 1, with a note saying so
    r = run_cli("hw", "eval", str(path), "--accelerator", "roofline")
    assert "note: symbolic input dimension(s) seq set to 1" in r.stderr
    assert macs("--dim", "seq=128", "--batch", "2") == 2 * 128 * 64 * 32
    for bad, needle in (("seq", "NAME=VALUE"), ("seq=-3", "NAME=VALUE"), ("len=4", "'len'")):
        r = run_cli("hw", "eval", str(path), "--accelerator", "roofline", "--dim", bad)
        assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1


def test_hw_eval_refuses_non_onnx(tmp_path):
    p = tmp_path / "x.onnx"
    p.write_bytes(b"definitely not a protobuf \x00\xff")
    r = run_cli("hw", "eval", str(p), "--accelerator", "systolic")
    assert r.returncode == 2 and str(p) in r.stderr


def test_measured_campaign(tmp_path):
    cfg = tmp_path / "m.toml"
    cfg.write_text(
        'name = "meas"\ntrials = 2\n[space]\nnetwork = "nb201"\n'
        'hardware = "device"\n[space.hw]\ndevice = "cpu"\n[objectives]\n'
        'accuracy = "maximize"\nlatency_ms = "minimize"\n[evaluate]\n'
        'accuracy = "benchmark:nb201/cifar10"\n'  # no cost: the device space's is measured:cpu
    )
    url = f"sqlite:///{tmp_path / 'm.db'}"
    r = run_cli("run", str(cfg), "--storage", url, "--no-progress")
    assert r.returncode == 0, r.stderr
    # show lists the measurement and says why there are no per-layer costs (it used to crash
    # re-pricing the layers with a model that only times whole networks)
    s = run_cli("show", "meas", "0", "--storage", url)
    assert s.returncode == 0, s.stderr
    assert "measured:onnxruntime-cpu" in s.stdout and "no per-layer costs" in s.stdout
    js = json.loads(run_cli("show", "meas", "0", "--storage", url, "--format", "json").stdout)
    assert js["layers"] == [] and js["cost_model"] == "measured:onnxruntime-cpu"
    q = run_cli(
        "query",
        "SELECT DISTINCT source FROM measurements WHERE metric = 'latency_ms'",
        "--storage",
        url,
        "--format",
        "json",
    )
    assert json.loads(q.stdout) == [{"source": "measured:onnxruntime-cpu"}]


def test_ctrl_c_keeps_the_trials_and_says_how_to_resume(tmp_path):
    """Ctrl-C in `run`: exit 130, the finished trials stay stored, and the message names the
    command that resumes the campaign (which then does, from where it stopped)."""
    import signal
    import subprocess
    import sys
    import time

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'name = "ctrl"\ntrials = 100000\n[space]\nnetwork = "nb201"\nhardware = "systolic"\n'
        '[objectives]\naccuracy = "maximize"\nlatency_ms = "minimize"\n[evaluate]\n'
        'accuracy = "benchmark:nb201/cifar10"\n[strategy]\nname = "random"\n'
    )
    url = f"sqlite:///{tmp_path / 'c.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cosearch.cli", "run", str(cfg), "--storage", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # interrupt once some trials are stored
        time.sleep(1.0)
        s = run_cli("status", "ctrl", "--storage", url, "--format", "json")
        if s.returncode == 0 and json.loads(s.stdout)["trials"]["COMPLETE"] >= 3:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted: ") and "/100000 trials complete and stored" in line
    assert f"`cosearch run {cfg} --storage {url}` resumes the campaign" in line
    stored = int(line.split()[1].split("/")[0])
    assert stored >= 3
    # the trial cut short is FAIL with its reason, not left RUNNING for a later start to find
    s = json.loads(run_cli("status", "ctrl", "--storage", url, "--format", "json").stdout)
    assert s["trials"]["RUNNING"] == 0 and s["trials"]["COMPLETE"] == stored
    r = run_cli("run", str(cfg), "--storage", url, "--trials", str(stored + 2), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resuming campaign 'ctrl'" in r.stderr and f"{stored + 2} trials complete" in r.stderr


def test_worker_with_a_config_uses_its_storage_key(tmp_path):
    # like run: a worker that ignored the key started a separate campaign in ./cosearch.db
    from .conftest import QUICK_TOML

    db = tmp_path / "shared.db"
    cfg = tmp_path / "w.toml"
    text = QUICK_TOML.format(name="w", trials=2, seed=0, strategy="random")
    cfg.write_text(f'storage = "sqlite:///{db}"\n' + text)
    here = tmp_path / "elsewhere"
    here.mkdir()
    env = {"COSEARCH_STORAGE": ""}
    r = run_cli("worker", "w", "--config", str(cfg), "--trials", "2", cwd=here, env=env)
    assert r.returncode == 0, r.stderr
    assert not (here / "cosearch.db").exists()
    r = run_cli("status", "w", "--storage", f"sqlite:///{db}", "--format", "json")
    assert json.loads(r.stdout)["trials"]["COMPLETE"] == 2


def test_hw_eval_measured_times_ops_the_analytical_models_do_not_price(tmp_path):
    # measured:cpu refused any op outside the analytical models' list, though onnxruntime
    # runs it (an LSTM; here an Einsum)
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8])
    node = helper.make_node("Einsum", ["x", "x"], ["y"], equation="bik,bjk->bij")
    model = helper.make_model(
        helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    path = tmp_path / "einsum.onnx"
    onnx.save(model, path)
    r = run_cli("hw", "eval", str(path), "--accelerator", "measured:cpu", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["latency_ms"] > 0
    r = run_cli("hw", "eval", str(path), "--accelerator", "systolic")
    assert r.returncode == 2 and "unsupported ONNX op type(s): Einsum" in r.stderr
