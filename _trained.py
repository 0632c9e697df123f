"""The ``train:<dataset>/<N>ep`` accuracy source: train each candidate network from scratch.

``accuracy = "train:digits/5ep"`` in ``[evaluate]`` (or ``[screen]``) trains every candidate of
a black-box campaign for 5 epochs on scikit-learn's digits and records its test accuracy, in
percent, as the candidate's ``accuracy`` (source ``train:digits/5ep``, fidelity 1). The dataset
is any spec that DARTS and Once-for-All take (:func:`cosearch.search.data.load_dataset`):
``digits``, ``folder:PATH`` or ``module:function``; the recipe is that of DARTS's final
architecture (:func:`cosearch.search._retrain.train_from_scratch`: SGD, cosine schedule,
trained on the training and validation splits, scored on the test split).

What is trained, and what is priced: the cost metrics price the network as the campaign's
``[space.net]`` options define it (the deployment target: CIFAR-sized nb201 cells, say); the
trained network is the same architecture built with the dataset's input channels, image size
(``input_size``, for the spaces that have it) and class count, as DARTS's retraining does.
``ofa_mbv3`` candidates see the images resized to their resolution ``net.r``.

Determinism: the initial weights come from the architecture (its digest seeds them), the
batch order from the campaign seed and the digest, and training runs on one torch thread
(torch's CPU kernels give thread-count-dependent sums), so every worker and every rerun gets
the same accuracy for the same candidate. A candidate trained once in a process is not trained
again when it comes back with another accelerator (joint searches pair one network with many
accelerators), and in a campaign a network that a finished trial already trained (another
worker's, an earlier run's) takes that trial's accuracy.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from cosearch.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from cosearch.search.data import DataSplits
    from cosearch.spaces import Architecture, NetworkSpace

__all__ = ["Trained", "TrainedAccuracy", "parse_train_source"]

_EPOCHS = re.compile(r"([1-9][0-9]{0,3})ep")
#: the training recipe; a change of what it computes must bump it (a campaign records it and
#: refuses to mix two recipes' accuracies)
RECIPE_VERSION = "v1"
#: at most this many candidates' accuracies are remembered per process
_REMEMBERED = 65_536


def parse_train_source(source: str, key: str = "accuracy") -> tuple[str, int]:
    """(dataset spec, epochs) of ``train:<dataset>/<N>ep``. Raises ConfigError otherwise."""
    from cosearch.search.data import check_dataset_spec

    rest = source.partition(":")[2]
    spec, _, epochs = rest.rpartition("/")
    match = _EPOCHS.fullmatch(epochs)
    if not spec or match is None:
        raise ConfigError(
            f"source {source!r} must look like 'train:<dataset>/<N>ep' with N from 1 to 9999, "
            "e.g. 'train:digits/5ep'",
            key=key,
        )
    try:
        check_dataset_spec(spec)
    except ConfigError as exc:
        raise ConfigError(f"source {source!r}: {exc.args[0]}", key=key) from exc
    return spec, int(match.group(1))


class Trained(NamedTuple):
    """One candidate's training: its test accuracy (percent) after ``epochs`` epochs (fewer
    than the source's when stopped early), and the test accuracy after each epoch (empty
    when the accuracy was remembered or looked up rather than trained here)."""

    accuracy: float
    epochs: int
    curve: tuple[float, ...] = ()


class TrainedAccuracy:
    """Trains candidates of ``network`` on ``dataset`` for ``epochs`` epochs.

    ``seed`` is the campaign seed (it fixes the dataset split and, with each candidate's
    digest, the batch order). ``trusted=False``: the campaign's configuration came from a
    store, so a ``module:function`` dataset is refused unless ``$COSEARCH_TRUSTED_DATASETS``
    lists it (see :func:`cosearch.search.data.load_dataset`).

    Raises:
        ConfigError: the network space has no torch form trained on images (``flexibert``,
            ``onnx_file``).
    """

    def __init__(
        self,
        network: NetworkSpace,
        dataset: str,
        epochs: int,
        *,
        seed: int = 0,
        trusted: bool = True,
        key: str = "accuracy",
    ) -> None:
        if "in_channels" not in network.options or "num_classes" not in network.options:
            raise ConfigError(
                f"accuracy source 'train:...' trains image classifiers; network space "
                f"{network.name!r} is not one (nb201, darts and ofa_mbv3 are)",
                key=key,
            )
        self.network = network
        self.dataset = dataset
        self.epochs = epochs
        self.seed = int(seed)
        self.trusted = trusted
        self.source = f"train:{source_dataset(dataset)}/{epochs}ep"
        #: 1 in ``[evaluate]``; in ``[screen]``, below 1 when ``[evaluate]`` trains the same
        #: dataset for more epochs (their ratio)
        self.fidelity = 1.0
        self._data: DataSplits | None = None
        self._space: NetworkSpace | None = None
        self._done: OrderedDict[str, float] = OrderedDict()  # trained to the last epoch
        #: ``lookup(digest, source, fidelity)``: the accuracy a finished trial of the campaign
        #: recorded for the architecture trained to the end (another worker, an earlier run)
        self.lookup: Callable[[str, str, float], float | None] | None = None

    def prepare(self) -> None:
        """Load the dataset and check that the network takes its images, before any trial
        (a campaign calls it when it starts). Raises ConfigError."""
        self._training_space()

    def data(self) -> DataSplits:
        """The dataset's splits, loaded on first use."""
        if self._data is None:
            from cosearch.search.data import load_dataset

            self._data = load_dataset(self.dataset, seed=self.seed, trusted=self.trusted)
        return self._data

    def _training_space(self) -> NetworkSpace:
        """The campaign's network space with the dataset's input and class count."""
        if self._space is None:
            data = self.data()
            opts = dict(self.network.options)
            opts.update(in_channels=data.in_channels, num_classes=data.num_classes)
            if "input_size" in opts:
                opts["input_size"] = data.image_size
            if "batch" in opts:  # the deployment batch: no part of what is trained
                opts["batch"] = 1
            try:
                self._space = type(self.network)(**opts)
            except ConfigError as exc:
                raise ConfigError(
                    f"{self.source}: the {self.network.name} network cannot take the "
                    f"dataset's {data.image_size}x{data.image_size}x{data.in_channels} "
                    f"images and {data.num_classes} classes: {exc.args[0]}",
                    key="accuracy",
                ) from exc
        return self._space

    def __call__(
        self, arch: Architecture, stop: Callable[[int, float], bool] | None = None
    ) -> Trained:
        """Train ``arch`` from scratch; ``stop(epoch, test accuracy)``, asked after every
        epoch but the last, ends training early when it returns True. An ``arch`` trained to
        the end before (by digest) gives the remembered accuracy."""
        done = self._done.get(arch.digest)
        if done is not None:
            self._done.move_to_end(arch.digest)
            return Trained(done, self.epochs)
        if self.lookup is not None:
            done = self.lookup(arch.digest, self.source, self.fidelity)
            if done is not None:
                self._remember(arch.digest, done)
                return Trained(done, self.epochs)
        import torch

        from cosearch.search._retrain import train_from_scratch

        data = self.data()
        # the network as trained: the batch order follows its digest, not that of the priced
        # network, whose deployment options (batch, input size) do not change what is trained
        network = self._training_space().build(dict(arch.genotype))
        module: torch.nn.Module = network.to_torch()
        resolution = arch.genotype.get("net.r")
        if isinstance(resolution, int) and resolution != data.image_size:
            module = _resized(module, resolution)
        blob = f"{self.seed}:{network.digest}".encode()
        seed = int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") >> 1
        curve: list[float] = []

        def after_epoch(epoch: int, accuracy: float) -> bool:
            curve.append(accuracy)
            return stop is not None and epoch < self.epochs and stop(epoch, accuracy)

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # dropout, if a network has any
                train_from_scratch(module, data, self.epochs, seed, after_epoch=after_epoch)
        finally:
            torch.set_num_threads(threads)
        if len(curve) == self.epochs:
            self._remember(arch.digest, curve[-1])
        return Trained(curve[-1], len(curve), tuple(curve))

    def _remember(self, digest: str, value: float) -> None:
        self._done[digest] = value
        while len(self._done) > _REMEMBERED:
            self._done.popitem(last=False)


def source_dataset(spec: str) -> str:
    """The dataset's part of a ``train:`` source: ``digits``, else the short name of the
    dataset (a folder's, a function's) and a hash of the spec as written, so that two
    folders both called ``images`` (or ``a:load`` and ``b:load``) never share a source."""
    from cosearch.search.data import dataset_name

    if spec == "digits":
        return spec
    return f"{dataset_name(spec)}@{hashlib.sha256(spec.encode()).hexdigest()[:8]}"


def _resized(module: torch.nn.Module, resolution: int) -> torch.nn.Module:
    """``module`` behind a bilinear resize of its input to ``resolution`` pixels."""
    from torch import nn

    from cosearch.search._ofa_train import resize

    class Resize(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return resize(x, resolution)

    return nn.Sequential(Resize(), module)
