"""Quantizing loaders: one function per backend, each (entry, precision, hardware, kernel) -> LoadedModel."""

from __future__ import annotations

import gc
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM

from core.errors import ModelUnavailableError, OutOfMemoryError
from core.models.catalog import CatalogEntry
from core.models.construction import build_on_meta
from core.models.hardware import Hardware, Precision, torch_dtype
from core.models.loading import LoadedModel, ModelKey, load_text_side, load_with
from core.models.memory import model_bytes
from core.quant import gptq
from core.quant.int4_linear import call_int4_directly
from core.quant.int4_siblings import share_sibling_products
from core.quant.kernels import (
    Kernel,
    head_is_quantized,
    head_kernel,
    int4_group,
    linear_in_features,
    load_config,
    quantize_head,
    quantize_modules,
    unfit_layers,
)
from core.quant.moe import unfuse_experts
from core.quant.streaming import load_streaming, stream_quantizer

os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(min(2, os.cpu_count() or 1)))
GPTQ_BITS = {Precision.GPTQ_INT8: 8, Precision.GPTQ_INT4: 4}


def load_packed(entry: CatalogEntry, precision: Precision, hardware: Hardware, kernel: Kernel) -> LoadedModel:
    """int8/int4 through kernel: dense text models quantize while they load (the peak stays near the quantized
    size); MoE models load in the kernel's dtype and have their experts un-fused first so they get quantized;
    vision models quantize their language part only. An untied lm_head gets kernels.head_kernel (CPU int4: int8)."""
    start = time.perf_counter()
    try:
        if entry.moe or entry.kind == "vision":
            # DeepSeek-VL's vision tower and aligner stay at full precision, so the whole model loads at it (the
            # language part's kernels then take full-precision activations: slower on a CPU, same weights)
            dtype = kernel.compute_dtype if entry.kind == "text" else torch_dtype(hardware.full_precision)
            loaded = load_with(entry, precision, hardware, {"dtype": dtype}, backend=kernel.library)
            unfuse_experts(loaded.model)
            target = language_part(loaded.model)  # DeepSeek-VL: the vision tower and aligner stay full
            group, skip = _plan(precision, linear_in_features(target))
            quantize_modules(target, precision.value, hardware.device, skip, group)
        else:
            group, skip = _plan(precision, linear_in_features(_meta_model(entry)))
            loaded = _load_streamed(entry, precision, hardware, kernel, skip, group) or load_with(
                entry, precision, hardware, _dense_kwargs(precision, hardware, kernel, skip, group),
                backend=kernel.library)
        quantize_head(language_part(loaded.model), precision.value, hardware.device)  # the streamed load did it
        call_int4_directly(loaded.model)  # CPU int4: ATen's kernel without torchao's per-call dispatch
        share_sibling_products(loaded.model)  # CPU int4: q, k and v in one kernel call
    except torch.OutOfMemoryError as exc:
        raise OutOfMemoryError(f"Not enough memory to quantize {entry.model_id} to {precision.value}.") from exc
    gc.collect()  # the full-precision tensors a quantizer replaced
    return replace(loaded, memory_bytes=model_bytes(loaded.model), load_seconds=time.perf_counter() - start,
                   kernel=_kernel_name(kernel, group, loaded.model, head_kernel(precision.value, hardware.device)),
                   unfit_layers=len(skip))


def _kernel_name(kernel: Kernel, group: int, model: nn.Module, head: Kernel | None) -> str:
    """What the row's kernel cell says: the body's kernel (and group), and the head's where it has its own."""
    name = f"{kernel.name}, group {group}" if group else kernel.name
    return f"{name}; lm_head: {head.name}" if head and head_is_quantized(language_part(model)) else name


def language_part(model: nn.Module) -> nn.Module:
    """What int8/int4 quantize: a vision-language model's language model (its vision tower, aligner and lm_head
    stay in full precision), or the whole model for a text model."""
    inner = getattr(model, "model", None)
    language = getattr(inner, "language_model", None)
    return language if isinstance(language, nn.Module) else model


def _plan(precision: Precision, in_features: dict[str, int]) -> tuple[int, list[str]]:
    """(int4 group, layers left unquantized): only int4 has a shape rule."""
    if precision != Precision.INT4:
        return 0, []
    group = int4_group(in_features)
    return group, unfit_layers(in_features, group)


def _dense_kwargs(precision: Precision, hardware: Hardware, kernel: Kernel, skip: list[str],
                  group: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dtype": kernel.compute_dtype,
                              "quantization_config": load_config(precision.value, hardware.device, skip, group)}
    if hardware.device == "cuda":
        kwargs["device_map"] = "cuda"
    return kwargs


def _load_streamed(entry: CatalogEntry, precision: Precision, hardware: Hardware, kernel: Kernel,
                   skip: list[str], group: int) -> LoadedModel | None:
    """A dense CPU model quantized layer by layer as its safetensors are read (core.quant.streaming); None where
    that does not apply (CUDA, adapters, remote code, no safetensors, names that need transformers' conversions)."""
    if hardware.device != "cpu" or entry.adapter_path or entry.trust_remote_code:
        return None
    folder = _checkpoint_folder(entry)
    if folder is None:
        return None
    start = time.perf_counter()
    model = load_streaming(folder, kernel.compute_dtype, stream_quantizer(precision.value, "cpu", group), skip)
    if model is None:
        return None
    tokenizer, processor = load_text_side(entry)
    return LoadedModel(ModelKey(entry.model_id, precision), entry, model, tokenizer, processor, "cpu",
                       str(kernel.compute_dtype).removeprefix("torch."), kernel.library, model_bytes(model),
                       time.perf_counter() - start)


def _checkpoint_folder(entry: CatalogEntry) -> Path | None:
    """The local folder holding entry's safetensors: the source itself, or its Hub snapshot (downloaded as
    from_pretrained would); None when it cannot be had (transformers' path then gives the message)."""
    if Path(entry.source).is_dir():
        return Path(entry.source)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(entry.source, allow_patterns=["*.json", "*.safetensors"]))
    except Exception:  # noqa: BLE001 - offline, gated, unknown: from_pretrained reports it properly
        return None


def _meta_model(entry: CatalogEntry) -> nn.Module:
    """entry's architecture on the meta device: layer shapes without reading a weight."""
    config = AutoConfig.from_pretrained(entry.source, trust_remote_code=entry.trust_remote_code)
    return build_on_meta(AutoModelForCausalLM, config, entry.trust_remote_code)


def load_gptq(entry: CatalogEntry, precision: Precision, hardware: Hardware, kernel: Kernel) -> LoadedModel:
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
        model = gptq.load_checkpoint(path, hardware.device, kernel.gptq_backend or "auto")
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"Cannot load the GPTQ checkpoint of {entry.model_id}: {exc}") from exc
    tokenizer, processor = load_text_side(entry)
    model.eval()
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return LoadedModel(ModelKey(entry.model_id, precision), entry, model, tokenizer, processor, hardware.device,
                       dtype, "GPTQModel", model_bytes(model), time.perf_counter() - start,
                       kernel=_gptq_kernel_name(model))


def _gptq_kernel_name(model: Any) -> str:
    """The quantized linear classes GPTQModel actually put in place, e.g. 'GPTQModel TorchAtenLinear'."""
    names = {type(m).__name__ for m in model.modules() if hasattr(m, "qweight") or hasattr(m, "QUANT_TYPE")}
    return "GPTQModel " + ", ".join(sorted(names)) if names else "GPTQModel"


def load_bitsandbytes(entry: CatalogEntry, precision: Precision, hardware: Hardware,
                      kernel: Kernel) -> LoadedModel:
    """bitsandbytes int8 or nf4, quantized by transformers while loading (CUDA only)."""
    from transformers import BitsAndBytesConfig

    dtype = torch_dtype(hardware.full_precision)
    config: Any = (BitsAndBytesConfig(load_in_8bit=True) if precision == Precision.BNB_INT8 else
                   BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype))
    kwargs = {"dtype": dtype, "quantization_config": config, "device_map": hardware.device}
    return replace(load_with(entry, precision, hardware, kwargs, backend="bitsandbytes"), kernel=kernel.name)
