"""Network spaces (ONNX-encoded candidates) and hardware design spaces."""

from cosearch.spaces import darts as _darts  # noqa: F401  (registers "darts")
from cosearch.spaces import flexibert as _flexibert  # noqa: F401  (registers "flexibert")
from cosearch.spaces import hardware as _hardware  # noqa: F401  (registers hardware spaces)
from cosearch.spaces import nb201 as _nb201  # noqa: F401  (registers "nb201")
from cosearch.spaces import ofa_mbv3 as _ofa_mbv3  # noqa: F401  (registers "ofa_mbv3")
from cosearch.spaces import onnx_file as _onnx_file  # noqa: F401  (registers "onnx_file")
from cosearch.spaces._base import (
    Architecture,
    HardwareSpace,
    NetworkSpace,
    genotype_digest,
    get_hardware_space,
    get_space,
    list_hardware_spaces,
    list_spaces,
    parse_accelerator,
    register_hardware_space,
    register_space,
)
from cosearch.spaces._params import Param

__all__ = [
    "Architecture",
    "HardwareSpace",
    "NetworkSpace",
    "Param",
    "genotype_digest",
    "get_hardware_space",
    "get_space",
    "list_hardware_spaces",
    "list_spaces",
    "parse_accelerator",
    "register_hardware_space",
    "register_space",
]
