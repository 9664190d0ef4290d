"""What this machine can run: device, full-precision dtype, memory."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import psutil
import torch

from core.errors import UnsupportedPrecisionError


class Precision(StrEnum):
    """How a model's weights are held. Quantized members are served by a quantizing backend (core.quant.backends)."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    INT8 = "int8"  # weight-only, optimum-quanto
    INT4 = "int4"  # weight-only, torchao packed int4 (group 128/64/32, see core.kernels)
    GPTQ_INT8 = "gptq-int8"  # GPTQModel, calibrated
    GPTQ_INT4 = "gptq-int4"
    BNB_INT8 = "bnb-int8"  # bitsandbytes, CUDA only
    BNB_NF4 = "bnb-nf4"
    GGUF_Q8_0 = "gguf-q8_0"  # llama.cpp (llama-cpp-python), converted and quantized by llama.cpp's own tools
    GGUF_Q4_0 = "gguf-q4_0"
    GGUF_Q4_K_M = "gguf-q4_k_m"

    @property
    def label(self) -> str:
        return PRECISION_LABELS.get(self.value, self.value)

    @property
    def quantized(self) -> bool:
        """True for the members served by a quantizing backend (core.quant.backends)."""
        return self not in (Precision.FP32, Precision.BF16, Precision.FP16)


PRECISION_LABELS = {"fp32": "fp32 (full)", "bf16": "bf16 (half)", "fp16": "fp16 (half)"}
PRECISION_LABELS.update({
    "int8": "int8 (optimum-quanto, weight-only)", "int4": "int4 (torchao, weight-only, two values per byte)",
    "gptq-int8": "GPTQ 8-bit (GPTQModel)", "gptq-int4": "GPTQ 4-bit (GPTQModel)",
    "bnb-int8": "bnb int8 (bitsandbytes, CUDA)", "bnb-nf4": "bnb nf4 (bitsandbytes, CUDA)",
    "gguf-q8_0": "GGUF Q8_0 (llama.cpp)", "gguf-q4_0": "GGUF Q4_0 (llama.cpp)",
    "gguf-q4_k_m": "GGUF Q4_K_M (llama.cpp)",
})


@dataclass(frozen=True)
class Hardware:
    device: str  # "cuda" or "cpu"
    name: str
    total_memory_bytes: int
    bf16_fast: bool  # bf16 is the full precision (CUDA with bf16 support)
    bf16_missing: str = ""  # why the picker does not offer bf16 here ("" when it does): a CPU without bf16 units

    @property
    def full_precision(self) -> Precision:
        """bf16 where it is fast, fp32 elsewhere (bf16 prefill is ~5x slower on CPUs)."""
        return Precision.BF16 if self.bf16_fast else Precision.FP32

    def available_memory_bytes(self) -> int:
        """Memory free for new models now: device memory on CUDA, available RAM on CPU."""
        if self.device == "cuda":
            free, _total = torch.cuda.mem_get_info()
            return int(free)
        return int(psutil.virtual_memory().available)

    def describe(self) -> str:
        return f"{self.device} ({self.name})"


def detect_hardware() -> Hardware:
    """Pick CUDA when present, else CPU."""
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Hardware("cuda", props.name, int(props.total_memory), torch.cuda.is_bf16_supported())
    return Hardware("cpu", f"{torch.get_num_threads()} threads", int(psutil.virtual_memory().total), False,
                    cpu_bf16_missing(cpu_bf16_units()))


def cpu_bf16_units() -> list[str]:
    """The bf16 instruction sets this CPU has, of those torch's CPU kernels use (AVX512-BF16, AMX)."""
    probes = (("AVX512-BF16", "_is_avx512_bf16_supported"), ("AMX", "_is_amx_tile_supported"))
    return [name for name, probe in probes if getattr(torch.cpu, probe, lambda: False)()]


def cpu_bf16_missing(units: list[str]) -> str:
    """Why bf16 is not offered on a CPU with these bf16 units ("" when it has one)."""
    if units:
        return ""
    return ("not offered on this CPU: it has neither AVX512-BF16 nor AMX, so bf16 matrix products are emulated "
            "and run slower than fp32 (it still loads when asked for by name, at half the memory).")


def base_precisions(hardware: Hardware) -> list[Precision]:
    """Unquantized precisions this hardware runs, full precision first."""
    if hardware.device == "cuda":
        rest = [p for p in (Precision.BF16, Precision.FP16, Precision.FP32) if p != hardware.full_precision]
        return [hardware.full_precision, *rest]
    return [Precision.FP32, Precision.BF16]


def torch_dtype(precision: Precision) -> torch.dtype:
    """The floating dtype that carries a precision's unquantized tensors."""
    return {Precision.FP32: torch.float32, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}[precision]


def parse_precision(value: Precision | str) -> Precision:
    """Precision from a picker or API string, or UnsupportedPrecisionError listing the known ones."""
    try:
        return Precision(value)
    except ValueError:
        known = ", ".join(p.value for p in Precision)
        raise UnsupportedPrecisionError(f"Unknown precision '{value}'. Known precisions: {known}.") from None
