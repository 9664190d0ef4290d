"""Loading a catalog model as GGUF: the file from files.py, the llama.cpp model from model.py, and the transformers
tokenizer for prompts (the same chat template and token ids as every other precision of the model)."""

from __future__ import annotations

import importlib.util
import logging
import time

from transformers import AutoConfig

from core.errors import ModelUnavailableError
from core.models.catalog import CatalogEntry
from core.models.hardware import Hardware, Precision
from core.models.loading import LoadedModel, ModelKey, load_text_side
from core.quant.gguf.files import Progress, gguf_file
from core.quant.gguf.model import GGUFCausalLM, open_llama
from core.quant.kernels import Kernel

GGUF_TYPES = {Precision.GGUF_Q8_0: "q8_0", Precision.GGUF_Q4_0: "q4_0", Precision.GGUF_Q4_K_M: "q4_k_m"}
MAX_CONTEXT = 4096  # llama.cpp allocates its KV cache for the whole window up front: cap it
INSTALL_HINT = ("llama-cpp-python is not installed: `make install-dev` builds it from source with the CMake flags "
                "in the Makefile (GGUF_CMAKE_ARGS; about 10 minutes on 2 cores).")
log = logging.getLogger(__name__)


def gguf_missing_reason() -> str | None:
    """Why GGUF precisions cannot be offered here (a package missing), or None."""
    if importlib.util.find_spec("llama_cpp") is None:
        return INSTALL_HINT
    for package, pip in (("gguf", "gguf==0.19.0"), ("sentencepiece", "sentencepiece==0.2.3")):
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed (pip install {pip}); llama.cpp's converter needs it."
    return None


def load_gguf(entry: CatalogEntry, precision: Precision, hardware: Hardware,
              kernel: Kernel | None = None) -> LoadedModel:
    """entry at a GGUF precision: converted and quantized once by llama.cpp (cached), served by llama.cpp."""
    start = time.perf_counter()
    path = gguf_file(entry, GGUF_TYPES[precision], _log_progress(entry, precision))
    tokenizer, _ = load_text_side(entry)
    config = AutoConfig.from_pretrained(entry.source, trust_remote_code=entry.trust_remote_code)
    window = min(entry.context_window, int(getattr(config.get_text_config(), "max_position_embeddings", 0)
                                           or entry.context_window), MAX_CONTEXT)
    try:
        llm, memory = open_llama(path, window)
    except ValueError as exc:  # llama-cpp-python's "Failed to load model from file"
        raise ModelUnavailableError(f"llama.cpp cannot load {path.name}: {exc}") from None
    config.get_text_config().max_position_embeddings = window  # what LoadedModel.context_window reads
    model = GGUFCausalLM(llm, config, path, memory)
    # runs on the CPU whatever the hardware: this build of llama.cpp has no GPU backend
    return LoadedModel(ModelKey(entry.model_id, precision), entry, model, tokenizer, None, "cpu",
                       "f32", "llama.cpp", memory.total, time.perf_counter() - start)


def _log_progress(entry: CatalogEntry, precision: Precision) -> Progress:
    def report(fraction: float, message: str) -> None:
        log.info("%s %s: %s (%.0f%%)", entry.model_id, precision.value, message, 100 * fraction)

    return report
