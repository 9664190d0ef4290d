"""Quantized kernels: what each one is, why it was chosen, and how to put it in place (configs, shape rules).

Which kernel serves which precision on which device is a column of the backend table (core.quant.backends)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from core.quant import fbgemm_int8
from core.quant.int8_linear import Int8DynamicLinear

INT4_GROUPS = (128, 64, 32)  # largest first: g128 decodes ~1.3x faster than g32 on the CPU int4 kernel
QUANTIZE_CHUNK_BYTES = 32 * 2**20  # rows quantized at a time by _quanto_int8 and the int8 head (bounds temporaries)
SKIP = ("lm_head",)  # never given the body's kernel: the output layer carries most of the quality (see HEAD_INT8)


@dataclass(frozen=True)
class Kernel:
    library: str  # the package that provides it, e.g. "torchao"
    name: str  # what the table shows, e.g. "torchao Int4OpaqueTensor (tinygemm)"
    compute_dtype: torch.dtype  # the dtype of activations and of the tensors left unquantized
    reason: str  # why this kernel, in words a user can check
    tested: bool = True  # False for the CUDA rows: chosen from the libraries' docs, no GPU here to run them
    gptq_backend: str = ""  # GPTQModel's BACKEND value, for the GPTQ precisions


# CPU choices, measured by bench/realsize.py at real width (2 AVX512 cores)
CPU_INT8 = Kernel("optimum-quanto", "optimum-quanto int8 · bf16 activations (_weight_int8pack_mm)", torch.bfloat16,
                  "fastest int8 measured on CPU: with bf16 activations quanto calls ATen's fused int8 kernel; "
                  "with fp32 activations it dequantized every weight at every step (0.30x fp32)")
CPU_INT4 = Kernel("torchao", "torchao Int4OpaqueTensor · bf16 (_weight_int4pack_mm_for_cpu)", torch.bfloat16,
                  "fastest 4-bit measured on CPU: two values per byte, read by ATen's packed int4 kernel; "
                  "torchao's one-value-per-byte int4 ran at 0.24x fp32")
CPU_GPTQ4 = Kernel("GPTQModel", "GPTQModel TorchAtenLinear · bf16 (_weight_int4pack_mm_for_cpu)", torch.bfloat16,
                   "GPTQ weights repacked for ATen's CPU int4 kernel (GPTQ_TORCH_ATEN)", gptq_backend="gptq_torch_aten")
CPU_GPTQ8 = Kernel("GPTQModel", "GPTQModel TorchLinear · bf16", torch.bfloat16,
                   "GPTQModel's torch kernel: its int4pack kernel takes 4-bit only, and GPTQ_TORCH_INT8 "
                   "re-quantizes the calibrated weights per channel", gptq_backend="gptq_torch")

HEAD_INT8 = Kernel("torch", "int8 weights x int8 activations per token "
                   f"({'FBGEMM' if fbgemm_int8.available() else 'torch._int_mm'})", torch.bfloat16,
                   "CPU int4 stores an untied lm_head in int8, not 4-bit (llama.cpp's Q4_0 uses Q6_K there); "
                   "FBGEMM's int8 linear reads a 129,280-row head in 5.4 ms a token where torch._int_mm took 9.2 "
                   "and quanto's weight-only int8 12.9 (bench/int4_head.py); a head tied to the embeddings stays in "
                   "full precision")

# CUDA choices from the libraries' documentation: no GPU here, so these rows are untested (tested=False)
CUDA_INT8 = Kernel("torchao", "torchao Int8WeightOnly · bf16", torch.bfloat16,
                   "weight-only int8 with bf16 activations (not run here: no GPU)", tested=False)
CUDA_INT4 = Kernel("torchao", "torchao Int4WeightOnly · bf16 (tinygemm)", torch.bfloat16,
                   "packed int4 with CUDA's tinygemm kernel (not run here: no GPU)", tested=False)
CUDA_GPTQ4 = Kernel("GPTQModel", "GPTQModel Marlin · fp16", torch.float16,
                    "Marlin is GPTQModel's fastest 4-bit kernel on Ampere+ (not run here: no GPU)",
                    tested=False, gptq_backend="gptq_marlin")
CUDA_GPTQ8 = Kernel("GPTQModel", "GPTQModel ExLlama v2 · fp16", torch.float16,
                    "ExLlama v2 serves 8-bit GPTQ on CUDA (not run here: no GPU)",
                    tested=False, gptq_backend="gptq_exllama_v2")
CUDA_BNB8 = Kernel("bitsandbytes", "bitsandbytes LLM.int8 · bf16", torch.bfloat16,
                   "bitsandbytes' int8 matmul (not run here: no GPU)", tested=False)
CUDA_BNB4 = Kernel("bitsandbytes", "bitsandbytes nf4 · bf16", torch.bfloat16,
                   "bitsandbytes' 4-bit NormalFloat (not run here: no GPU)", tested=False)


def linear_in_features(model: nn.Module) -> dict[str, int]:
    """in_features of every nn.Linear a kernel would quantize (all but SKIP), by module name."""
    return {name: m.in_features for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and not any(s in name for s in SKIP)}


def int4_group(in_features: dict[str, int]) -> int:
    """The largest group that divides most layers' in_features (ties: the larger group)."""
    return max(INT4_GROUPS, key=lambda g: (sum(n % g == 0 for n in in_features.values()), g))


def unfit_layers(in_features: dict[str, int], group: int) -> list[str]:
    """Layers whose in_features the group does not divide: they stay unquantized."""
    return [name for name, n in in_features.items() if n % group]


def ao_config(precision: str, device: str, group: int) -> Any:
    """The torchao config object for int4/int8 on device."""
    if precision == "int4" and device == "cpu":
        from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig

        return PrototypeInt4WeightOnlyConfig(group_size=group)
    if precision == "int4":
        from torchao.quantization import Int4WeightOnlyConfig

        return Int4WeightOnlyConfig(group_size=group, int4_packing_format="tile_packed_to_4d")
    from torchao.quantization import Int8WeightOnlyConfig

    return Int8WeightOnlyConfig()


def load_config(precision: str, device: str, skip: list[str], group: int) -> Any:
    """transformers' quantization_config that quantizes a dense model while it loads."""
    not_convert = [*SKIP, *skip]
    if precision == "int8" and device == "cpu":
        from transformers import QuantoConfig

        return QuantoConfig(weights="int8", modules_to_not_convert=not_convert)
    from transformers import TorchAoConfig

    return TorchAoConfig(ao_config(precision, device, group), modules_to_not_convert=not_convert)


def quantize_modules(model: nn.Module, precision: str, device: str, skip: list[str], group: int) -> None:
    """Quantize model's linear layers in place (MoE models, after their experts are un-fused)."""
    excluded = set(skip)
    if precision == "int8" and device == "cpu":
        from optimum.quanto import freeze, qint8, quantize

        quantize(model, weights=qint8, exclude=[*SKIP, *excluded])
        freeze(model)
        return
    from torchao.quantization import quantize_

    def target(module: nn.Module, name: str) -> bool:
        return isinstance(module, nn.Linear) and name not in excluded and not any(s in name for s in SKIP)

    quantize_(model, ao_config(precision, device, group), filter_fn=target)


def quantize_linear(linear: nn.Linear, precision: str, device: str, group: int) -> nn.Module:
    """One linear layer quantized (int8/int4 on device): the module that replaces it in its parent."""
    if precision == "int8" and device == "cpu":
        return _quanto_int8(linear)
    from torchao.quantization import quantize_

    quantize_(linear, ao_config(precision, device, group))
    return linear


def _quanto_int8(linear: nn.Linear) -> nn.Module:
    """linear as quanto's frozen int8 QLinear, quantized QUANTIZE_CHUNK_BYTES of rows at a time: quanto's own
    freeze() works on the whole weight, and its temporaries for a 151,936-row head doubled the load peak."""
    from optimum.quanto import qint8
    from optimum.quanto.nn import quantize_module
    from optimum.quanto.tensor import quantize_weight
    from optimum.quanto.tensor.weights import WeightQBytesTensor

    qlinear = quantize_module(linear, weights=qint8)
    weight = qlinear.weight
    data, scale = torch.empty(weight.shape, dtype=torch.int8), torch.empty(weight.shape[0], 1, dtype=weight.dtype)
    step = max(1, QUANTIZE_CHUNK_BYTES // (weight[0].numel() * weight.element_size()))
    for start in range(0, weight.shape[0], step):  # per-row scales: a chunk quantizes as the whole would
        rows = weight[start:start + step]
        piece = quantize_weight(rows, qtype=qint8, axis=0, scale=qlinear.optimizer(rows, qtype=qint8, axis=0),
                                activation_qtype=qlinear.activation_qtype)
        data[start:start + step].copy_(piece._data)
        scale[start:start + step].copy_(piece._scale)
    qlinear.weight = nn.Parameter(WeightQBytesTensor.create(qint8, 0, weight.size(), weight.stride(), data, scale,
                                                            qlinear.activation_qtype))
    return qlinear


def head_kernel(precision: str, device: str) -> Kernel | None:
    """The kernel an untied lm_head gets at precision on device; None where it stays in full precision."""
    return HEAD_INT8 if precision == "int4" and device == "cpu" else None


def tied_head(model: nn.Module) -> bool:
    """Whether model's lm_head shares its weight with the token embeddings (then it stays as it is)."""
    config = getattr(model, "config", None)
    text = config.get_text_config() if config is not None else None
    if getattr(text, "tie_word_embeddings", False):
        return True
    head, embeddings = getattr(model, "lm_head", None), getattr(model, "get_input_embeddings", lambda: None)()
    return head is not None and embeddings is not None and head.weight is embeddings.weight


def head_is_quantized(model: nn.Module) -> bool:
    """Whether model's lm_head is quantize_head's work (an Int8DynamicLinear), not a plain nn.Linear."""
    return isinstance(getattr(model, "lm_head", None), Int8DynamicLinear)


def quantize_head(model: nn.Module, precision: str, device: str) -> bool:
    """Store model's untied, still full-precision lm_head with head_kernel (CPU int4: int8); True when it did."""
    head = getattr(model, "lm_head", None)
    if head_kernel(precision, device) is None or type(head) is not nn.Linear or tied_head(model):
        return False
    model.lm_head = Int8DynamicLinear.from_linear(head, QUANTIZE_CHUNK_BYTES)
    return True


# GGUF precisions: llama.cpp's own ggml kernels (built for this CPU by requirements-gguf.txt's flags)
LLAMA_CPP = Kernel("llama.cpp", "llama.cpp ggml (AVX2/AVX512 CPU build)", torch.float32,
                   "llama.cpp quantizes and multiplies the weights itself (token embeddings and output too); "
                   "the same CPU build serves a CUDA machine's GGUF rows")
LLAMA_CPP_ON_CUDA = replace(LLAMA_CPP, tested=False)  # the CPU build on a CUDA machine: not run here (no GPU)
