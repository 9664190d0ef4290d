"""Quantize a dense model layer by layer while its safetensors are read, so the load peak stays near the
quantized size: the model is built on the meta device, each tensor is read in row chunks straight into its
compute dtype, and each linear layer is quantized as soon as its weights have arrived.

transformers 5.23 quantizes per parameter too, but reads every tensor whole in the checkpoint's dtype first: a
float32 checkpoint's 129k-row embedding then exists twice (fp32 copy + bf16 cast) next to what is loaded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

from core.models.construction import BUILDING
from core.models.native_memory import trim
from core.quant.int8_linear import packed_elsewhere
from core.quant.kernels import SKIP, quantize_head, quantize_linear

CHUNK_BYTES = 32 * 2**20  # what one read holds in the checkpoint's dtype before it is cast
FILE_ELEMENT_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "I8": 1, "U8": 1}


def checkpoint_files(folder: Path) -> list[Path]:
    """The safetensors files of a local checkpoint folder (the index's shards, or the single file)."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / s for s in shards]
    return sorted(folder.glob("*.safetensors"))


def empty_model(folder: Path, dtype: torch.dtype) -> nn.Module:
    """The checkpoint's architecture with parameters on the meta device (buffers such as rotary tables real)."""
    from accelerate import init_empty_weights

    config = AutoConfig.from_pretrained(folder)
    with BUILDING, init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model


def missing_keys(model: nn.Module, files: list[Path]) -> set[str]:
    """Model parameters no checkpoint tensor provides by its own name (tied outputs excepted)."""
    stored: set[str] = set()
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            stored.update(f.keys())
    wanted = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    if getattr(model.config.get_text_config(), "tie_word_embeddings", False):
        wanted -= {"lm_head.weight"}
    return wanted - stored


def read_chunked(handle: Any, key: str, dtype: torch.dtype) -> torch.Tensor:
    """Tensor `key` in dtype, read CHUNK_BYTES of rows at a time (never the whole tensor in the file's dtype)."""
    piece = handle.get_slice(key)
    shape = piece.get_shape()
    if len(shape) < 2:
        return piece[:].to(dtype)
    out = torch.empty(shape, dtype=dtype)
    row_bytes = max(1, out[0].numel() * FILE_ELEMENT_BYTES.get(piece.get_dtype(), 4))
    step = max(1, CHUNK_BYTES // row_bytes)
    for start in range(0, shape[0], step):
        out[start:start + step].copy_(piece[start:start + step])
    return out


def _tensors(files: list[Path], dtype: torch.dtype) -> Iterator[tuple[str, torch.Tensor]]:
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                yield key, read_chunked(handle, key, dtype)


def load_streaming(folder: Path, dtype: torch.dtype, quantize: Callable[[nn.Module, str, nn.Linear], None],
                   skip: list[str]) -> nn.Module | None:
    """folder's model in dtype with every linear layer but skip handed to `quantize(parent, child_name, linear)` as
    soon as its tensors are read (lm_head too: the quantizer decides what it gets); None when the checkpoint's
    names need transformers' conversions (then the caller loads through transformers)."""
    files = checkpoint_files(folder)
    if not files:
        return None
    model = empty_model(folder, dtype)
    if missing_keys(model, files):
        return None
    params = {name: p for name, p in model.named_parameters(remove_duplicate=False)}
    pending = {name: len(list(m.parameters(recurse=False))) for name, m in model.named_modules()
               if isinstance(m, nn.Linear)}
    for key, value in _tensors(files, dtype):
        if key not in params:
            continue  # e.g. a stored rotary table: transformers ignores these too
        module_name, _, tensor_name = key.rpartition(".")
        module = model.get_submodule(module_name) if module_name else model
        module._parameters[tensor_name] = nn.Parameter(value, requires_grad=False)
        if module_name in pending:
            pending[module_name] -= 1
            if not pending[module_name] and module_name not in skip:
                parent_name, _, child = module_name.rpartition(".")
                quantize(model.get_submodule(parent_name) if parent_name else model, child, module)
                # the full-precision weights the quantizer freed leave holes glibc keeps: without a trim the
                # resident size grows to ~2x the quantized model while loading (2.2 GB vs 1.1 GB for 1.0 GB int8)
                trim()
    model.tie_weights()
    if any(p.is_meta for m in model.modules() if not packed_elsewhere(m) for p in m.parameters(recurse=False)):
        raise ValueError(f"the checkpoint in {folder} lacks some weights")
    generation = folder / "generation_config.json"
    if generation.exists():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    return model.eval()


def stream_quantizer(precision: str, device: str, group: int) -> Callable[[nn.Module, str, nn.Linear], None]:
    """quantize(parent, child_name, linear) for int8/int4 on device, replacing the layer in its parent; lm_head
    gets kernels.quantize_head's treatment (CPU int4: int8 where untied), never the body's kernel."""

    def quantize(parent: nn.Module, child: str, linear: nn.Linear) -> None:
        if child in SKIP:
            quantize_head(parent, precision, device)
        else:
            setattr(parent, child, quantize_linear(linear, precision, device, group))

    return quantize
