"""The backend table: the ONE place that says, for every precision, which backend serves it, its bits, the
package it needs, where it runs and its loader. A new backend is one row here plus one loader function."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from core.errors import UnsupportedPrecisionError
from core.models.catalog import CatalogEntry
from core.models.hardware import Hardware, Precision, base_precisions
from core.models.loading import LoadedModel, load_full
from core.quant import kernels as k
from core.quant import loaders as q
from core.quant.gguf.loader import gguf_missing_reason, load_gguf
from core.quant.kernels import Kernel

Loader = Callable[[CatalogEntry, Precision, Hardware, Kernel | None], LoadedModel]


@dataclass(frozen=True)
class Backend:
    name: str  # what the table shows, e.g. "optimum-quanto"
    bits: int
    loader: Loader
    package: str = ""  # import name that must be installed ("" = always there)
    pip: str = ""  # what to install
    devices: tuple[str, ...] = ("cpu", "cuda")  # where it runs
    text_only: bool = True  # vision models are not offered this precision
    vision_note: str = ""  # for vision models: what this precision quantizes and what stays full
    dense_only: bool = False  # refuses DeepSeek's fused MoE experts
    kernels: Mapping[str, Kernel] = field(default_factory=dict)  # device -> the kernel chosen there, and why


def _load_full(entry: CatalogEntry, precision: Precision, hardware: Hardware, _kernel: Kernel | None) -> LoadedModel:
    return load_full(entry, precision, hardware)


def _full(bits: int, devices: tuple[str, ...] = ("cpu", "cuda")) -> Backend:
    return Backend("transformers", bits, _load_full, devices=devices, text_only=False)


_LANGUAGE_ONLY = "language model quantized; vision tower, aligner and lm_head stay full precision"

BACKENDS: dict[Precision, Backend] = {
    Precision.FP32: _full(32),
    Precision.BF16: _full(16),
    Precision.FP16: _full(16, ("cuda",)),
    Precision.INT8: Backend("optimum-quanto", 8, q.load_packed, "optimum.quanto", "optimum-quanto==0.2.7",
                            kernels={"cpu": k.CPU_INT8, "cuda": k.CUDA_INT8}, text_only=False,
                            vision_note=_LANGUAGE_ONLY),
    Precision.INT4: Backend("torchao", 4, q.load_packed, "torchao", "torchao==0.18.0",
                            kernels={"cpu": k.CPU_INT4, "cuda": k.CUDA_INT4}, text_only=False,
                            vision_note=_LANGUAGE_ONLY),
    Precision.GPTQ_INT8: Backend("GPTQModel", 8, q.load_gptq, "gptqmodel", "gptqmodel==7.6.0",
                                 kernels={"cpu": k.CPU_GPTQ8, "cuda": k.CUDA_GPTQ8}),
    Precision.GPTQ_INT4: Backend("GPTQModel", 4, q.load_gptq, "gptqmodel", "gptqmodel==7.6.0",
                                 kernels={"cpu": k.CPU_GPTQ4, "cuda": k.CUDA_GPTQ4}),
    Precision.BNB_INT8: Backend("bitsandbytes", 8, q.load_bitsandbytes, "bitsandbytes", "bitsandbytes==0.50.2",
                                devices=("cuda",), dense_only=True, kernels={"cuda": k.CUDA_BNB8}),
    Precision.BNB_NF4: Backend("bitsandbytes", 4, q.load_bitsandbytes, "bitsandbytes", "bitsandbytes==0.50.2",
                               devices=("cuda",), dense_only=True, kernels={"cuda": k.CUDA_BNB4}),
    # llama.cpp, built for the CPU (also used on a CUDA machine); the package check is gguf_missing_reason()
    Precision.GGUF_Q8_0: Backend("llama.cpp", 8, load_gguf, "llama_cpp", "-r requirements-gguf.txt",
                                 kernels={"cpu": k.LLAMA_CPP, "cuda": k.LLAMA_CPP_ON_CUDA}),
    Precision.GGUF_Q4_0: Backend("llama.cpp", 4, load_gguf, "llama_cpp", "-r requirements-gguf.txt",
                                 kernels={"cpu": k.LLAMA_CPP, "cuda": k.LLAMA_CPP_ON_CUDA}),
    Precision.GGUF_Q4_K_M: Backend("llama.cpp", 4, load_gguf, "llama_cpp", "-r requirements-gguf.txt",
                                 kernels={"cpu": k.LLAMA_CPP, "cuda": k.LLAMA_CPP_ON_CUDA}),
}


def bits_of(precision: Precision) -> int:
    """Bits per weight at this precision."""
    return BACKENDS[precision].bits


def backend_name(precision: Precision) -> str:
    """The library that serves this precision."""
    return BACKENDS[precision].name


def kernel_of(precision: Precision, device: str) -> Kernel | None:
    """The kernel the table chose for precision on device ('cpu' or 'cuda'); None for unquantized precisions."""
    return BACKENDS[precision].kernels.get(device)


def precision_note(entry: CatalogEntry, precision: Precision) -> str:
    """What a quantized precision leaves in full precision for this model ("" when nothing worth saying)."""
    return BACKENDS[precision].vision_note if entry.kind == "vision" else ""


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
    if backend.name == "llama.cpp":
        return gguf_missing_reason()  # llama-cpp-python, and what llama.cpp's converter imports
    if backend.package and importlib.util.find_spec(backend.package.split(".")[0]) is None:
        return f"{backend.package} is not installed (pip install {backend.pip})."
    return None


def available_precisions(entry: CatalogEntry, hardware: Hardware) -> list[Precision]:
    """Precisions the picker offers for entry on this hardware, full precision first, then quantized."""
    quantized = [p for p in BACKENDS if p.quantized and unavailable_reason(entry, p, hardware) is None]
    return [p for p in base_precisions(hardware) if not _bf16_not_offered(p, hardware)] + quantized


def unavailable_precisions(entry: CatalogEntry, hardware: Hardware) -> list[tuple[Precision, str]]:
    """Precisions not offered for entry here (quantized ones, and bf16 on a CPU without bf16 units), each with
    the reason in words."""
    found = [(p, unavailable_reason(entry, p, hardware)) for p in BACKENDS if p.quantized]
    slow = [(Precision.BF16, hardware.bf16_missing)] if _bf16_not_offered(Precision.BF16, hardware) else []
    return slow + [(p, reason) for p, reason in found if reason]


def _bf16_not_offered(precision: Precision, hardware: Hardware) -> bool:
    """bf16 on a CPU without bf16 units: runnable (API, tests) but not offered in the pickers."""
    return precision == Precision.BF16 and hardware.device == "cpu" and bool(hardware.bf16_missing)


def load_model(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> LoadedModel:
    """Load entry at precision through its backend's loader; UnsupportedPrecisionError says why it cannot."""
    reason = unavailable_reason(entry, precision, hardware)
    if reason:
        raise UnsupportedPrecisionError(reason if not precision.quantized else
                                        f"{precision.label} is not available for {entry.model_id}: {reason}")
    return BACKENDS[precision].loader(entry, precision, hardware, kernel_of(precision, hardware.device))
