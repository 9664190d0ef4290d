"""Quantizing loaders: one function per backend, each (entry, precision, hardware) -> LoadedModel."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from core.errors import ModelUnavailableError, OutOfMemoryError
from core.models.catalog import CatalogEntry
from core.models.hardware import Hardware, Precision, torch_dtype
from core.models.loading import LoadedModel, ModelKey, load_text_side, load_with
from core.models.memory import model_bytes
from core.quant import gptq
from core.quant.moe import unfuse_experts

os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(min(2, os.cpu_count() or 1)))
INT4_GROUP = 32  # torchao int4 group size: divides the in_features of every layer we quantize
GPTQ_BITS = {Precision.GPTQ_INT8: 8, Precision.GPTQ_INT4: 4}


def load_quanto_int8(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> LoadedModel:
    """Weight-only int8 (optimum-quanto) on every linear layer but lm_head; MoE experts un-fused first."""
    return _quantize_after_load(entry, precision, hardware, "optimum-quanto", quantize_int8)


def load_torchao_int4(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> LoadedModel:
    """Weight-only int4 (torchao, group INT4_GROUP) on every linear layer but lm_head; MoE experts un-fused first."""
    return _quantize_after_load(entry, precision, hardware, "torchao", quantize_int4)


def quantize_int8(model: nn.Module) -> None:
    """optimum-quanto weight-only int8, lm_head kept in full precision."""
    from optimum.quanto import freeze, qint8, quantize

    quantize(model, weights=qint8, exclude=["lm_head"])
    freeze(model)


def quantize_int4(model: nn.Module) -> None:
    """torchao weight-only int4 in groups of INT4_GROUP; layers whose width the group does not divide stay full."""
    from torchao.quantization import IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerGroup

    config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(INT4_GROUP))
    quantize_(model, config, filter_fn=_int4_target)


def _int4_target(module: nn.Module, name: str) -> bool:
    return isinstance(module, nn.Linear) and "lm_head" not in name and module.in_features % INT4_GROUP == 0


def _quantize_after_load(entry: CatalogEntry, precision: Precision, hardware: Hardware, backend: str,
                         quantize: Any) -> LoadedModel:
    start = time.perf_counter()
    loaded = load_with(entry, precision, hardware, {"dtype": torch_dtype(hardware.full_precision)}, backend=backend)
    try:
        unfuse_experts(loaded.model)
        quantize(loaded.model)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemoryError(f"Not enough memory to quantize {entry.model_id} to {precision.value}.") from exc
    return replace(loaded, memory_bytes=model_bytes(loaded.model), load_seconds=time.perf_counter() - start)


def load_gptq(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> LoadedModel:
    """GPTQModel: a folder that already holds a GPTQ checkpoint as is, else calibrate once into the cache."""
    start = time.perf_counter()
    if gptq.is_gptq_checkpoint(entry.source):
        path = entry.source  # already quantized (GPTQModel or AutoGPTQ): load as is
    else:
        try:
            path = str(gptq.quantize_to_cache(entry, GPTQ_BITS[precision], hardware.device))
        except torch.OutOfMemoryError as exc:
            raise OutOfMemoryError(f"Not enough memory to quantize {entry.model_id} to {precision.value}.") from exc
    try:
        model = gptq.load_checkpoint(path, hardware.device)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"Cannot load the GPTQ checkpoint of {entry.model_id}: {exc}") from exc
    tokenizer, processor = load_text_side(entry)
    model.eval()
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return LoadedModel(ModelKey(entry.model_id, precision), entry, model, tokenizer, processor, hardware.device,
                       dtype, "GPTQModel", model_bytes(model), time.perf_counter() - start)


def load_bitsandbytes(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> LoadedModel:
    """bitsandbytes int8 or nf4, quantized by transformers while loading (CUDA only)."""
    from transformers import BitsAndBytesConfig

    dtype = torch_dtype(hardware.full_precision)
    config: Any = (BitsAndBytesConfig(load_in_8bit=True) if precision == Precision.BNB_INT8 else
                   BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype))
    kwargs = {"dtype": dtype, "quantization_config": config, "device_map": hardware.device}
    return load_with(entry, precision, hardware, kwargs, backend="bitsandbytes")
