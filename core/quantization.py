"""Quantized precisions: which backend serves each, whether it runs here, and loading through it."""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from core import gptq
from core.catalog import CatalogEntry
from core.errors import ModelUnavailableError, OutOfMemoryError, UnsupportedPrecisionError
from core.gguf_loader import GGUF_TYPES, gguf_missing_reason, load_gguf
from core.hardware import Hardware, Precision, torch_dtype
from core.loading import LoadedModel, ModelKey, _load_text_side, load_with
from core.memory import model_bytes
from core.moe import unfuse_experts

os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(min(2, os.cpu_count() or 1)))
INT4_GROUP = 32  # torchao int4 group size: divides the in_features of every layer we quantize


@dataclass(frozen=True)
class Backend:
    name: str  # what the table shows, e.g. "optimum-quanto"
    bits: int
    package: str  # import name that must be installed
    pip: str  # what to install
    cuda_only: bool = False


BACKENDS: dict[Precision, Backend] = {
    Precision.INT8: Backend("optimum-quanto", 8, "optimum.quanto", "optimum-quanto==0.2.7"),
    Precision.INT4: Backend("torchao", 4, "torchao", "torchao==0.18.0"),
    Precision.GPTQ_INT8: Backend("GPTQModel", 8, "gptqmodel", "gptqmodel==7.6.0"),
    Precision.GPTQ_INT4: Backend("GPTQModel", 4, "gptqmodel", "gptqmodel==7.6.0"),
    Precision.BNB_INT8: Backend("bitsandbytes", 8, "bitsandbytes", "bitsandbytes==0.50.2", cuda_only=True),
    Precision.BNB_NF4: Backend("bitsandbytes", 4, "bitsandbytes", "bitsandbytes==0.50.2", cuda_only=True),
    Precision.GGUF_Q8_0: Backend("llama.cpp", 8, "llama_cpp", "-r requirements-gguf.txt"),
    Precision.GGUF_Q4_0: Backend("llama.cpp", 4, "llama_cpp", "-r requirements-gguf.txt"),
    Precision.GGUF_Q4_K_M: Backend("llama.cpp", 4, "llama_cpp", "-r requirements-gguf.txt"),
}


def bits_of(precision: Precision) -> int:
    """Bits per weight: the backend's, or the float width for unquantized precisions."""
    return BACKENDS[precision].bits if precision.quantized else {"fp32": 32, "bf16": 16, "fp16": 16}[precision.value]


def backend_name(precision: Precision) -> str:
    return BACKENDS[precision].name if precision.quantized else "transformers"


def unavailable_reason(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> str | None:
    """Why precision cannot serve entry on hardware, in words; None when it can."""
    backend = BACKENDS[precision]
    if backend.cuda_only and hardware.device != "cuda":
        return f"{backend.name} needs a CUDA GPU; this machine runs on {hardware.device}."
    if entry.kind != "text":
        return "quantized loading is offered for text models only."
    if backend.name == "bitsandbytes" and entry.moe:
        return ("bitsandbytes leaves DeepSeek's fused MoE experts in full precision and fails on "
                "DeepseekV3's kv_b_proj; use int8/int4 or GPTQ, which quantize the experts.")
    if backend.name == "llama.cpp":
        return gguf_missing_reason()
    if importlib.util.find_spec(backend.package.split(".")[0]) is None:
        return f"{backend.package} is not installed (pip install {backend.pip})."
    return None


def quantized_precisions(entry: CatalogEntry, hardware: Hardware) -> list[Precision]:
    """Quantized precisions that run for entry on this hardware."""
    return [p for p in BACKENDS if unavailable_reason(entry, p, hardware) is None]


def load_quantized(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> LoadedModel:
    """Load entry quantized to precision; experts of MoE models are un-fused first so they get quantized."""
    reason = unavailable_reason(entry, precision, hardware)
    if reason:
        raise UnsupportedPrecisionError(f"{precision.label} is not available for {entry.model_id}: {reason}")
    if precision in GGUF_TYPES:  # llama.cpp's own memory, measured by it
        return load_gguf(entry, precision, hardware)
    start = time.perf_counter()
    try:
        if precision in (Precision.GPTQ_INT4, Precision.GPTQ_INT8):
            loaded = _load_gptq(entry, precision, hardware)
        elif precision in (Precision.BNB_INT8, Precision.BNB_NF4):
            loaded = _load_bnb(entry, precision, hardware)
        else:
            loaded = load_with(entry, precision, hardware, {"dtype": torch_dtype(hardware.full_precision)},
                               backend=BACKENDS[precision].name)
            unfuse_experts(loaded.model)
            quantize_in_place(loaded.model, precision)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemoryError(f"Not enough memory to quantize {entry.model_id} to {precision.value}.") from exc
    return replace(loaded, memory_bytes=model_bytes(loaded.model), load_seconds=time.perf_counter() - start)


def quantize_in_place(model: nn.Module, precision: Precision) -> None:
    """Weight-only quantization of every linear layer but lm_head (quanto int8, torchao int4)."""
    if precision == Precision.INT8:
        from optimum.quanto import freeze, qint8, quantize

        quantize(model, weights=qint8, exclude=["lm_head"])
        freeze(model)
        return
    from torchao.quantization import IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerGroup

    config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(INT4_GROUP))
    quantize_(model, config, filter_fn=_int4_target)


def _int4_target(module: nn.Module, name: str) -> bool:
    return isinstance(module, nn.Linear) and "lm_head" not in name and module.in_features % INT4_GROUP == 0


def _load_gptq(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> LoadedModel:
    if gptq.is_gptq_checkpoint(entry.source):
        path = entry.source  # already quantized (GPTQModel or AutoGPTQ): load as is
    else:
        path = str(gptq.quantize_to_cache(entry, BACKENDS[precision].bits, hardware.device))
    start = time.perf_counter()
    try:
        model = gptq.load_checkpoint(path, hardware.device)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"Cannot load the GPTQ checkpoint of {entry.model_id}: {exc}") from exc
    tokenizer, processor = _load_text_side(entry)
    model.eval()
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return LoadedModel(ModelKey(entry.model_id, precision), entry, model, tokenizer, processor, hardware.device,
                       dtype, "GPTQModel", model_bytes(model), time.perf_counter() - start)


def _load_bnb(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> LoadedModel:
    from transformers import BitsAndBytesConfig

    dtype = torch_dtype(hardware.full_precision)
    config: Any = (BitsAndBytesConfig(load_in_8bit=True) if precision == Precision.BNB_INT8 else
                   BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype))
    kwargs = {"dtype": dtype, "quantization_config": config, "device_map": hardware.device}
    return load_with(entry, precision, hardware, kwargs, backend="bitsandbytes")
