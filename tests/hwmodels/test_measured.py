"""The measured cost model: onnxruntime CPU timing of whole ONNX models."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cosearch.errors import ConfigError, MeasurementError, OnnxImportError
from cosearch.hwmodels import Accelerator, Layer, get_cost_model
from cosearch.hwmodels.measured import LatencyMeasurement, MeasuredCostModel
from cosearch.spaces import get_hardware_space

CPU = get_hardware_space("device").default()


def _conv_model(*, weights_as_inputs: bool) -> onnx.ModelProto:
    """Conv(3 -> 16, 3x3) -> Relu -> GlobalAveragePool on a 1 x 3 x 32 x 32 input."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 1, 1])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["y"]),
    ]
    inputs, inits = [x], []
    if weights_as_inputs:  # structure only: the weight is a graph input, no initializer
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [16, 3, 3, 3]))
    else:
        w = np.random.default_rng(0).standard_normal((16, 3, 3, 3)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, "w"))
    graph = helper.make_graph(nodes, "small", inputs, [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_a_small_conv_model_measures_consistently() -> None:
    model = MeasuredCostModel(warmup=2, repeats=10)
    first = model.measure(_conv_model(weights_as_inputs=True), CPU)
    second = model.measure(_conv_model(weights_as_inputs=False), CPU)
    for m in (first, second):
        assert isinstance(m, LatencyMeasurement)
        assert m.latency_ms > 0 and m.iqr_ms >= 0 and m.std_ms >= 0 and m.spread_ms == m.iqr_ms
        assert m.min_ms <= m.latency_ms
        assert (m.repeats, m.warmup, m.threads, m.device) == (10, 2, 1, "cpu")
        assert len(m.samples_ms) == 10
    # the same work twice: the medians agree within a loose factor (shared CI machines)
    assert 1 / 5 < first.latency_ms / second.latency_ms < 5


def test_evaluate_takes_the_model_not_layers() -> None:
    model = MeasuredCostModel(warmup=1, repeats=3)
    cost = model.evaluate(_conv_model(weights_as_inputs=False), CPU)
    assert cost.latency_ms > 0 and cost.energy_mj == 0 and cost.latency_cycles == 0
    with pytest.raises(TypeError, match="needs the ONNX model"):
        model.evaluate([Layer("gemm", c=4, k=4)], CPU)
    with pytest.raises(TypeError, match="whole ONNX models"):
        model.layer_cost(Layer("gemm"), CPU)
    assert model.source == "measured:onnxruntime-cpu"
    # a GPU measurement is not labelled as a CPU one
    assert model.source_for("cuda") == "measured:onnxruntime-cuda"
    assert model.area_mm2(CPU) == 0.0


def test_devices_and_options() -> None:
    model = MeasuredCostModel(warmup=0, repeats=1)
    onnx_model = _conv_model(weights_as_inputs=False)
    # an Accelerator without a name is the CPU (what parse_accelerator("device") gives)
    assert model.measure(onnx_model, Accelerator("device", {})).device == "cpu"
    with pytest.raises(ConfigError, match="NAS-Bench-201 latency table"):
        model.measure(onnx_model, get_hardware_space("device", device="lat_pixel3").default())
    with pytest.raises(ValueError, match="template device"):
        model.measure(onnx_model, Accelerator("systolic", {}))
    with pytest.raises(ConfigError, match="'repeats' option"):
        get_cost_model("measured", repeats=0)
    with pytest.raises(ConfigError, match="'threads' option"):
        MeasuredCostModel(threads=1.5)  # type: ignore[arg-type]


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available here"
)
def test_cuda_without_the_provider_is_a_clear_error() -> None:
    acc = get_hardware_space("device", device="cuda").default()
    with pytest.raises(ConfigError, match="CUDAExecutionProvider"):
        MeasuredCostModel(warmup=0, repeats=1).measure(_conv_model(weights_as_inputs=False), acc)


def test_inputs_too_large_for_memory_are_refused_before_any_is_built(tmp_path) -> None:
    """A legal input of 2**31 floats was drawn as float64 first (16 GiB, then 8 more for the
    cast): a MemoryError with exit 1 under a memory limit, the OOM killer without one."""
    from tests.conftest import run_cli

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2**31])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2**31])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "big", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(ConfigError, match=r"graph inputs need 8\.0 GiB"):
        MeasuredCostModel(warmup=0, repeats=1).measure(model, CPU)
    onnx.save(model, tmp_path / "big.onnx")
    r = run_cli("hw", "eval", str(tmp_path / "big.onnx"), "--accelerator", "measured:cpu")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "GiB" in r.stderr, r.stderr


def test_a_structure_only_model_is_not_timed() -> None:
    # its weights are graph inputs fed with random data: onnxruntime neither folds nor
    # pre-packs them, so the time is another graph's (0.50 ms against 0.23 ms for a resnet)
    from cosearch.spaces.onnx_io import strip_weights

    with pytest.raises(OnnxImportError, match="structure-only copy"):
        MeasuredCostModel(warmup=0, repeats=1).measure(
            strip_weights(_conv_model(weights_as_inputs=False)), CPU
        )


def test_a_model_that_fails_when_run_is_one_clear_error(tmp_path) -> None:
    # onnxruntime accepts the graph and fails on its first run (the Reshape target does not
    # hold the input's 12 elements): exit 1 with onnxruntime's exception before
    from tests.conftest import run_cli

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    target = numpy_helper.from_array(np.array([5, 4], np.int64), "target")
    node = helper.make_node("Reshape", ["x", "target"], ["y"])
    graph = helper.make_graph([node], "bad", [x], [y], [target])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for warmup in (0, 2):
        with pytest.raises(MeasurementError, match="onnxruntime failed running the model"):
            MeasuredCostModel(warmup=warmup, repeats=1).measure(model, CPU)
    onnx.save(model, tmp_path / "bad.onnx")
    r = run_cli("hw", "eval", str(tmp_path / "bad.onnx"), "--accelerator", "measured:cpu")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"error: {tmp_path / 'bad.onnx'}: onnxruntime failed running")


def test_a_candidate_that_fails_when_run_fails_its_trial_only(tmp_path, monkeypatch) -> None:
    # onnxruntime running out of memory on one candidate: that trial fails, the search goes on
    # (an input error, which ends a campaign, ended it)
    import cosearch

    toml = tmp_path / "m.toml"
    toml.write_text(
        'name = "timed"\nseed = 0\ntrials = 3\n[space]\nnetwork = "nb201"\n'
        'hardware = "device"\n[objectives]\naccuracy = "maximize"\nlatency_ms = "minimize"\n'
        '[evaluate]\naccuracy = "benchmark:nb201/cifar10"\ncost = "measured:cpu"\n'
        'artifacts = "none"\n[strategy]\nname = "random"\n'
    )
    real, made = ort.InferenceSession.__init__, []

    def init(self, *args, **kwargs):
        real(self, *args, **kwargs)
        made.append(self)
        if len(made) == 2:  # the second candidate

            def run(*a, **k):
                raise RuntimeError("Non-zero status code returned: bad allocation")

            self.run = run

    monkeypatch.setattr(ort.InferenceSession, "__init__", init)
    c = cosearch.Campaign.from_config(
        cosearch.load_config(toml), storage=f"sqlite:///{tmp_path / 'c.db'}"
    )
    c.evaluator.cost_model.warmup, c.evaluator.cost_model.repeats = 1, 2
    summary = c.run()
    assert (summary.completed, summary.failed) == (3, 1)
    (failed,) = [t for t in c.study.trials if t.state.name == "FAIL"]
    assert "bad allocation" in failed.user_attrs["fail_reason"]


def test_timing_needs_the_weights_of_an_external_data_file(tmp_path) -> None:
    from tests.conftest import run_cli

    model = _conv_model(weights_as_inputs=False)
    onnx.save(model, tmp_path / "m.onnx", save_as_external_data=True, location="w.bin")
    (tmp_path / "w.bin").unlink()
    r = run_cli("hw", "eval", str(tmp_path / "m.onnx"), "--accelerator", "measured:cpu")
    assert r.returncode == 2 and "'w.bin'" in r.stderr and "missing" in r.stderr, r.stderr
    # the analytical models need shapes only
    assert (
        run_cli("hw", "eval", str(tmp_path / "m.onnx"), "--accelerator", "systolic").returncode == 0
    )
