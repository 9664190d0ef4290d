"""The backend table: the ONE place that says, for every precision, which backend serves it, its bits, the
package it needs, where it runs and its loader. A new backend is one row here plus one loader function."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import UnsupportedPrecisionError
from core.models.catalog import CatalogEntry
from core.models.hardware import Hardware, Precision, base_precisions
from core.models.loading import LoadedModel, load_full
from core.quant import loaders as q

Loader = Callable[[CatalogEntry, Precision, Hardware], LoadedModel]


@dataclass(frozen=True)
class Backend:
    name: str  # what the table shows, e.g. "optimum-quanto"
    bits: int
    loader: Loader
    package: str = ""  # import name that must be installed ("" = always there)
    pip: str = ""  # what to install
    devices: tuple[str, ...] = ("cpu", "cuda")  # where it runs
    text_only: bool = True  # vision models are not offered this precision
    dense_only: bool = False  # refuses DeepSeek's fused MoE experts


def _full(bits: int, devices: tuple[str, ...] = ("cpu", "cuda")) -> Backend:
    return Backend("transformers", bits, load_full, devices=devices, text_only=False)


BACKENDS: dict[Precision, Backend] = {
    Precision.FP32: _full(32),
    Precision.BF16: _full(16),
    Precision.FP16: _full(16, ("cuda",)),
    Precision.INT8: Backend("optimum-quanto", 8, q.load_quanto_int8, "optimum.quanto", "optimum-quanto==0.2.7"),
    Precision.INT4: Backend("torchao", 4, q.load_torchao_int4, "torchao", "torchao==0.18.0"),
    Precision.GPTQ_INT8: Backend("GPTQModel", 8, q.load_gptq, "gptqmodel", "gptqmodel==7.6.0"),
    Precision.GPTQ_INT4: Backend("GPTQModel", 4, q.load_gptq, "gptqmodel", "gptqmodel==7.6.0"),
    Precision.BNB_INT8: Backend("bitsandbytes", 8, q.load_bitsandbytes, "bitsandbytes", "bitsandbytes==0.50.2",
                                devices=("cuda",), dense_only=True),
    Precision.BNB_NF4: Backend("bitsandbytes", 4, q.load_bitsandbytes, "bitsandbytes", "bitsandbytes==0.50.2",
                               devices=("cuda",), dense_only=True),
}


def bits_of(precision: Precision) -> int:
    """Bits per weight at this precision."""
    return BACKENDS[precision].bits


def backend_name(precision: Precision) -> str:
    """The library that serves this precision."""
    return BACKENDS[precision].name


def unavailable_reason(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> str | None:
    """Why precision cannot serve entry on hardware, in words; None when it can."""
    backend = BACKENDS[precision]
    if not precision.quantized:
        if precision in base_precisions(hardware):
            return None
        offered = ", ".join(p.value for p in base_precisions(hardware))
        return f"{precision.value} is not available on {hardware.device}; choose one of: {offered}."
    if hardware.device not in backend.devices:
        return f"{backend.name} needs a CUDA GPU; this machine runs on {hardware.device}."
    if backend.text_only and entry.kind != "text":
        return "quantized loading is offered for text models only."
    if backend.dense_only and entry.moe:
        return (f"{backend.name} leaves DeepSeek's fused MoE experts in full precision and fails on "
                "DeepseekV3's kv_b_proj; use int8/int4 or GPTQ, which quantize the experts.")
    if backend.package and importlib.util.find_spec(backend.package.split(".")[0]) is None:
        return f"{backend.package} is not installed (pip install {backend.pip})."
    return None


def available_precisions(entry: CatalogEntry, hardware: Hardware) -> list[Precision]:
    """Precisions the picker offers for entry on this hardware, full precision first, then quantized."""
    quantized = [p for p in BACKENDS if p.quantized and unavailable_reason(entry, p, hardware) is None]
    return base_precisions(hardware) + quantized


def load_model(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> LoadedModel:
    """Load entry at precision through its backend's loader; UnsupportedPrecisionError says why it cannot."""
    reason = unavailable_reason(entry, precision, hardware)
    if reason:
        label = precision.value if not precision.quantized else precision.label
        raise UnsupportedPrecisionError(reason if not precision.quantized else
                                        f"{label} is not available for {entry.model_id}: {reason}")
    return BACKENDS[precision].loader(entry, precision, hardware)
