"""Measured latency of a whole ONNX model on a real device (cost model ``measured``).

This is the one cost model that measures instead of computing, so it is not pure: two calls
give different numbers within the device's noise. It times the whole model, not layers (a
layer's latency in isolation is not its latency inside the fused, scheduled graph), so the
``CostModel`` layer interface does not apply: call :meth:`MeasuredCostModel.measure` with an
``onnx.ModelProto``, or :meth:`MeasuredCostModel.evaluate` with the model in place of the
layer list; ``evaluate`` with layers raises ``TypeError``.

Protocol (onnxruntime): one session per call, ``intra_op_num_threads = threads`` (default 1)
and ``inter_op_num_threads = 1``, sequential execution, graph optimizations at the fixed level
``ORT_ENABLE_ALL``; ``warmup`` untimed runs (default 10), then ``repeats`` timed runs
(default 50) of ``session.run`` with the same inputs; the latency is the median in ms, with
the interquartile range and the standard deviation as spread. Every graph input that no
initializer provides (activations, and the weights of structure-only models) is fed a
deterministic random tensor from ``numpy.random.default_rng(seed)``; symbolic dimensions are 1.

Devices (the ``device`` hardware space's ``device`` option, stored as the accelerator's
``name``): ``cpu`` (CPUExecutionProvider) and
``cuda`` (CUDAExecutionProvider, only where onnxruntime has it; times include host-device
copies of inputs and outputs). The ``lat_<device>`` columns of the NAS-Bench-201 latency table
are devices too (:data:`TABLE_DEVICES`), but their numbers come from that table, not from
here.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cosearch.errors import ConfigError, MeasurementError, OnnxImportError
from cosearch.hwmodels._base import (
    Accelerator,
    Cost,
    CostModel,
    Layer,
    LayerCost,
    register_cost_model,
)

if TYPE_CHECKING:  # onnx takes 0.7 s to import; `cosearch hwmodels` lists this model
    import onnx

__all__ = [
    "MeasuredCostModel",
    "LatencyMeasurement",
    "MEASURED_DEVICES",
    "TABLE_DEVICES",
    "DEVICE_NAMES",
    "DEFAULT_DEVICE",
    "canonical_device",
]

#: devices this module times through onnxruntime, and their execution providers
MEASURED_DEVICES: dict[str, str] = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
#: the ``lat_<device>`` columns of ``nb201/nb201_accuracy_latency.csv`` (HELP / HW-NAS-Bench
#: measurements, in ms): GPUs at batch 1/32/256, server CPUs, phones
TABLE_DEVICES: tuple[str, ...] = (
    "1080ti_1",
    "1080ti_256",
    "1080ti_32",
    "2080ti_1",
    "2080ti_256",
    "2080ti_32",
    "essential_ph_1",
    "gold_6240",
    "pixel3",
    "samsung_a50",
    "samsung_s7",
    "silver_4114",
    "silver_4210r",
    "titan_rtx_1",
    "titan_rtx_32",
    "titanx_1",
    "titanx_256",
    "titanx_32",
    "titanxp_1",
    "titanxp_256",
    "titanxp_32",
)
DEVICE_NAMES: tuple[str, ...] = (*MEASURED_DEVICES, *TABLE_DEVICES)
#: the device an accelerator without a ``name`` means
DEFAULT_DEVICE = "cpu"


def canonical_device(name: Any) -> str:
    """``name`` as a device of :data:`DEVICE_NAMES` (a table column's ``lat_`` prefix is
    dropped).

    Raises:
        ConfigError: ``name`` is no known device.
    """
    text = name[4:] if isinstance(name, str) and name.startswith("lat_") else name
    if text not in DEVICE_NAMES:
        raise ConfigError(
            f"The 'device' option of hw:device must be one of {list(DEVICE_NAMES)} (or a "
            f"table column lat_<device>). Got {name!r} instead.",
            key="device",
        )
    return str(text)


@dataclass(frozen=True)
class LatencyMeasurement:
    """The timing of one model on one device. Times in milliseconds."""

    latency_ms: float  # median of the timed runs
    iqr_ms: float  # 75th minus 25th percentile
    std_ms: float
    min_ms: float
    repeats: int
    warmup: int
    threads: int
    device: str
    provider: str
    samples_ms: tuple[float, ...]

    @property
    def spread_ms(self) -> float:
        """The spread reported with the median: the interquartile range."""
        return self.iqr_ms


def _positive_int(value: Any, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(
            f"The {key!r} option of the measured cost model must be an int >= {low}. "
            f"Got {value!r} instead.",
            key=key,
        )
    return value


def _random_inputs(model: onnx.ModelProto, seed: int) -> dict[str, np.ndarray]:
    """A deterministic random tensor for every graph input that no initializer provides."""
    from onnx.helper import tensor_dtype_to_np_dtype

    rng = np.random.default_rng(seed)
    given = {i.name for i in model.graph.initializer}
    feeds: dict[str, np.ndarray] = {}
    need, limit = 0, _input_limit_bytes()
    for vi in model.graph.input:
        if vi.name in given:
            continue
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or tt.elem_type == 0:
            raise ConfigError(
                f"graph input {vi.name!r} has no tensor type; the measured cost model can "
                "only feed tensors",
                key="model",
            )
        shape = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in tt.shape.dim
        )
        dtype = np.dtype(tensor_dtype_to_np_dtype(tt.elem_type))
        # bytes at the peak: a float16 input is drawn at single precision, then converted
        per_element = dtype.itemsize + (4 if dtype.kind == "f" and dtype.itemsize < 4 else 0)
        need += int(np.prod(shape, dtype=np.float64)) * per_element
        if need > limit:
            raise ConfigError(
                f"the graph inputs need {need / 2**30:.1f} GiB (input {vi.name!r} has shape "
                f"{list(shape)}); the measured cost model builds them in memory, at most "
                f"{limit / 2**30:.1f} GiB on this machine",
                key="model",
            )
        if dtype.kind == "f":  # drawn at single precision: a double copy doubled the memory
            draw = np.float64 if dtype == np.float64 else np.float32
            feeds[vi.name] = rng.standard_normal(shape, dtype=draw).astype(dtype, copy=False)
        elif dtype.kind in "biu":  # 0/1 (safe as indices: Gather), drawn at their own width
            feeds[vi.name] = rng.integers(0, 2, shape, dtype=dtype)
        else:
            raise ConfigError(
                f"graph input {vi.name!r} has type {dtype}; the measured cost model feeds "
                "float, int and bool tensors",
                key="model",
            )
    return feeds


def _input_limit_bytes() -> int:
    """How much memory the measured model's random inputs may take: a quarter of this
    machine's memory (or of the container's limit, cgroup v2), at most 4 GiB; onnxruntime
    needs room for the outputs and activations too."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 * 2**30
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            cap = f.read().strip()
        if cap.isdigit():
            total = min(total, int(cap))
    except OSError:
        pass
    return int(min(4 * 2**30, total // 4))


@register_cost_model("measured")
class MeasuredCostModel(CostModel):
    """Whole-model latency measured with onnxruntime on this machine's CPU (or CUDA GPU).

    ``MeasuredCostModel(warmup=10, repeats=50, threads=1, seed=0)``.

    Raises:
        ConfigError: an option is out of range.
    """

    version = "v1"
    templates = ("device",)

    def __init__(
        self, warmup: int = 10, repeats: int = 50, threads: int = 1, seed: int = 0
    ) -> None:
        super().__init__()
        self.warmup = _positive_int(warmup, "warmup", 0)
        self.repeats = _positive_int(repeats, "repeats", 1)
        self.threads = _positive_int(threads, "threads", 1)
        self.seed = _positive_int(seed, "seed", 0)

    @property
    def source(self) -> str:
        """The source of a measurement on this machine's CPU (see :meth:`source_for`)."""
        return self.source_for(DEFAULT_DEVICE)

    @staticmethod
    def source_for(device: str) -> str:
        """The source recorded for measurements on ``device``: ``measured:onnxruntime-cpu``,
        ``measured:onnxruntime-cuda``."""
        return f"measured:onnxruntime-{canonical_device(device)}"

    def machine(self, device: str) -> str:
        """What times ``device`` here, for telling two machines' timings apart: the processor
        (CPU model name, or the GPU's for cuda), the thread count and onnxruntime's version,
        e.g. ``"AMD EPYC 7B13, 1 thread, onnxruntime 1.23.2"``."""
        import onnxruntime as ort

        chip = _gpu_name() if canonical_device(device) == "cuda" else _cpu_name()
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        return f"{chip}, {threads}, onnxruntime {ort.__version__}"

    # -- the CostModel surface ----------------------------------------------------------------
    def layer_cost(self, layer: Layer, acc: Accelerator) -> LayerCost:
        raise TypeError(
            "the measured cost model times whole ONNX models, not layers; call "
            "measure(model, acc) or evaluate(model, acc) with an onnx.ModelProto"
        )

    def area_mm2(self, acc: Accelerator) -> float:
        """0: a real device has no modelled area."""
        return 0.0

    def clock_mhz(self, acc: Accelerator) -> float:
        raise TypeError("a measured device has no modelled clock; use latency_ms")

    def evaluate(  # type: ignore[override]
        self, model: onnx.ModelProto | Iterable[Layer], acc: Accelerator
    ) -> Cost:
        """The measured median as a Cost: ``latency_ms`` is the median; the analytical
        fields (cycles, energy, area, traffic, utilization, MACs) are 0, not measured.

        Raises:
            TypeError: ``model`` is a list of layers, not an ``onnx.ModelProto``.
            ConfigError: see :meth:`measure`.
        """
        import onnx

        if not isinstance(model, onnx.ModelProto):
            raise TypeError(
                "the measured cost model needs the ONNX model, not its layers: call "
                "evaluate(arch.onnx(), acc) or measure(model, acc)"
            )
        m = self.measure(model, acc)
        return Cost(
            compute_cycles=0.0,
            latency_cycles=0.0,
            latency_ms=m.latency_ms,
            energy_mj=0.0,
            area_mm2=0.0,
            sram_bytes=0.0,
            dram_bytes=0.0,
            utilization=0.0,
            macs=0,
        )

    def provider(self, device: str) -> str:
        """onnxruntime's execution provider for ``device``; ConfigError for a device this
        machine cannot measure (a table-only device, or a provider this install lacks)."""
        import onnxruntime as ort

        device = canonical_device(device)
        if device not in MEASURED_DEVICES:
            raise ConfigError(
                f"device {device!r} is a column of the NAS-Bench-201 latency table, not a "
                f"device this machine can measure; measured devices: {list(MEASURED_DEVICES)}",
                key="name",
            )
        provider = MEASURED_DEVICES[device]
        if provider not in ort.get_available_providers():
            raise ConfigError(
                f"device {device!r} needs onnxruntime's {provider}, which this installation "
                f"lacks (available: {', '.join(ort.get_available_providers())})",
                key="name",
            )
        return provider

    # -- measuring ----------------------------------------------------------------------------
    def measure(self, model: onnx.ModelProto, acc: Accelerator | None = None) -> LatencyMeasurement:
        """Time ``model`` on the device ``acc`` names (``Accelerator("device", {"name": ...})``;
        no ``name``, or ``acc=None``, means ``cpu``).

        Raises:
            ValueError: ``acc`` is not a ``device`` accelerator.
            ConfigError: the device is a table-only device, ``cuda`` without onnxruntime's
                CUDA provider, or a graph input has a type that cannot be fed.
            OnnxImportError: the model's weights are external data it does not hold (load it
                with ``load_onnx(..., load_weights=True)``) or graph inputs of a structure-only
                copy (``strip_weights``), or onnxruntime refuses it.
            MeasurementError: onnxruntime accepted the model but failed running it.
        """
        import onnxruntime as ort

        if acc is not None and acc.template != "device":
            raise ValueError(
                f"cost model 'measured' takes accelerators of template device; got {acc.template!r}"
            )
        device = canonical_device(
            acc.get("name", DEFAULT_DEVICE) if acc is not None else DEFAULT_DEVICE
        )
        provider = self.provider(device)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # errors come back as the exception below; onnxruntime's own log would repeat them
        opts.log_severity_level = 4
        import onnx

        external = [
            t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
        ]
        if external:
            raise OnnxImportError(
                f"{len(external)} weight(s) of the model (first {external[0]!r}) are external "
                "data it does not hold; load it with load_onnx(..., load_weights=True)"
            )
        from cosearch.hwmodels.layers import weight_names

        stripped = (weight_names(model) - {t.name for t in model.graph.initializer}) & {
            i.name for i in model.graph.input
        }
        if stripped:
            raise OnnxImportError(
                f"{len(stripped)} weight(s) of the model (first {min(stripped)!r}) are graph "
                "inputs of a structure-only copy; onnxruntime would time another graph (weights "
                "neither folded nor pre-packed): measure the model with its weights"
            )
        feeds = _random_inputs(model, self.seed)
        samples: list[float] = []
        try:
            session = ort.InferenceSession(
                model.SerializeToString(), sess_options=opts, providers=[provider]
            )
        except Exception as err:  # onnxruntime raises its own types (Fail, InvalidGraph, ...)
            raise OnnxImportError(f"onnxruntime cannot run the model: {_first_line(err)}") from err
        try:  # the first run, warm-up or timed: some models fail only when run (a Reshape to
            # the wrong element count), and any may run out of memory
            t0 = time.perf_counter_ns()
            session.run(None, feeds)
            first_ms = (time.perf_counter_ns() - t0) * 1e-6
        except Exception as err:
            raise MeasurementError(
                f"onnxruntime failed running the model: {_first_line(err)}"
            ) from err
        if self.warmup == 0:
            samples.append(first_ms)
        for _ in range(self.warmup - 1):
            session.run(None, feeds)
        while len(samples) < self.repeats:
            t0 = time.perf_counter_ns()
            session.run(None, feeds)
            samples.append((time.perf_counter_ns() - t0) * 1e-6)
        q1, q3 = np.percentile(samples, [25, 75])
        return LatencyMeasurement(
            latency_ms=float(statistics.median(samples)),
            iqr_ms=float(q3 - q1),
            std_ms=float(np.std(samples)),
            min_ms=float(min(samples)),
            repeats=self.repeats,
            warmup=self.warmup,
            threads=self.threads,
            device=device,
            provider=provider,
            samples_ms=tuple(samples),
        )


def _cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else what :mod:`platform` knows)."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _gpu_name() -> str:
    """The first NVIDIA GPU's model name from the Linux driver, else "unknown GPU"."""
    from pathlib import Path

    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            for line in info.read_text(errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "Model" and value.strip():
                    return " ".join(value.split())
        except OSError:
            continue
    return "unknown GPU"


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
