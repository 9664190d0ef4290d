"""Loading int8/int4 through the kernel chosen for the device: dense models quantize while they load."""

from __future__ import annotations

import gc
from dataclasses import replace
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from core.catalog import CatalogEntry
from core.hardware import Hardware, Precision
from core.kernels import Kernel, int4_group, kernel_for, linear_in_features, load_config, quantize_modules, unfit_layers
from core.loading import LoadedModel, load_with
from core.moe import unfuse_experts


def load_fast(entry: CatalogEntry, precision: Precision, hardware: Hardware, backend: str) -> LoadedModel:
    """Load entry at int8/int4 with the device's kernel; MoE experts are un-fused first so they get quantized."""
    kernel = kernel_for(precision.value, hardware.device)
    assert kernel is not None, f"no kernel for {precision.value} on {hardware.device}"
    if entry.moe:
        loaded = load_with(entry, precision, hardware, {"dtype": kernel.compute_dtype}, backend=backend)
        unfuse_experts(loaded.model)
        group, skip = _plan(precision, linear_in_features(loaded.model))
        quantize_modules(loaded.model, precision.value, hardware.device, skip, group)
    else:
        group, skip = _plan(precision, linear_in_features(_meta_model(entry)))
        loaded = load_with(entry, precision, hardware, _dense_kwargs(precision, hardware, kernel, skip, group),
                           backend=backend)
    gc.collect()  # the full-precision tensors a quantizer replaced
    return replace(loaded, kernel=_describe(kernel, precision, group), unfit_layers=len(skip))


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


def _meta_model(entry: CatalogEntry) -> torch.nn.Module:
    """entry's architecture on the meta device: layer shapes without reading a weight."""
    config = AutoConfig.from_pretrained(entry.source, trust_remote_code=entry.trust_remote_code)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, trust_remote_code=entry.trust_remote_code)


def _describe(kernel: Kernel, precision: Precision, group: int) -> str:
    return f"{kernel.name}, group {group}" if precision == Precision.INT4 else kernel.name
