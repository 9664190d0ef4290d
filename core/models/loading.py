"""from_pretrained for each family and precision; the only place weights are read."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

from core.errors import ModelUnavailableError, OutOfMemoryError
from core.models import decode_attention
from core.models.catalog import CatalogEntry
from core.models.construction import BUILDING
from core.models.hardware import Hardware, Precision, torch_dtype
from core.models.memory import model_bytes

decode_attention.install()  # every model this app loads decodes with it on the CPU (see the module)


@dataclass(frozen=True)
class ModelKey:
    model_id: str
    precision: Precision


@dataclass
class LoadedModel:
    key: ModelKey
    entry: CatalogEntry
    model: Any  # a transformers PreTrainedModel
    tokenizer: Any  # text tokenizer (for vision models: the processor's tokenizer)
    processor: Any | None  # AutoProcessor for vision models
    device: str
    dtype: str  # dtype of the unquantized tensors
    backend: str  # "transformers" or the quantization backend
    memory_bytes: int  # measured tensor storage
    load_seconds: float
    kernel: str = ""  # the quantized kernel serving the weights (core.kernels), "" when unquantized
    unfit_layers: int = 0  # linear layers left unquantized because the kernel cannot take their shape
    last_used: float = field(default_factory=time.monotonic)

    @property
    def context_window(self) -> int:
        """Tokens a prompt plus answer may use: the catalog's window, capped by the model's positions."""
        config = self.model.config.get_text_config()
        limit = getattr(config, "max_position_embeddings", None) or self.entry.context_window
        return min(self.entry.context_window, int(limit))

    def describe(self) -> str:
        return f"{self.device} · {self.key.precision.value} · {self.backend}"


def load_full(entry: CatalogEntry, precision: Precision, hardware: Hardware) -> LoadedModel:
    """Load entry unquantized, its tensors in precision's dtype."""
    kwargs: dict[str, Any] = {"dtype": torch_dtype(precision), "trust_remote_code": entry.trust_remote_code}
    return load_with(entry, precision, hardware, kwargs, backend="transformers")


def load_with(entry: CatalogEntry, precision: Precision, hardware: Hardware,
              kwargs: dict[str, Any], backend: str) -> LoadedModel:
    """from_pretrained(entry.source, **kwargs) + tokenizer/processor, moved to the device and measured."""
    _check_source(entry)
    start = time.perf_counter()
    try:
        tokenizer, processor = load_text_side(entry)
        model_cls = AutoModelForImageTextToText if entry.kind == "vision" else AutoModelForCausalLM
        with BUILDING:  # transformers sets the process-wide default dtype while it builds
            model = model_cls.from_pretrained(entry.source, **kwargs)
        _complete_tied_weights(model, entry)
        if entry.adapter_path:
            model = _with_adapter(model, entry.adapter_path, kwargs)
        if "device_map" not in kwargs and "quantization_config" not in kwargs:
            model = model.to(hardware.device)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemoryError(f"Not enough memory to load {entry.model_id} at {precision.value}.") from exc
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(_unavailable_message(entry, exc)) from exc
    model.eval()
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return LoadedModel(ModelKey(entry.model_id, precision), entry, model, tokenizer, processor,
                       hardware.device, dtype, backend, model_bytes(model), time.perf_counter() - start)


def _with_adapter(model: Any, adapter_path: str, kwargs: dict[str, Any]) -> Any:
    from core.models.adapters import attach_adapter  # peft is imported only when an adapter is used

    return attach_adapter(model, adapter_path, merge="quantization_config" not in kwargs)


def _complete_tied_weights(model: Any, entry: CatalogEntry) -> None:
    """Re-tie weights a load left on the meta device (seen for DeepSeek-VL's tied lm_head after other
    loads in the same process); anything still missing means the checkpoint is incomplete."""
    if not any(t.is_meta for t in model.parameters()):
        return
    model.tie_weights()
    output, inputs = model.get_output_embeddings(), model.get_input_embeddings()
    tied = getattr(model.config.get_text_config(), "tie_word_embeddings", False)
    if tied and output is not None and output.weight.is_meta and not inputs.weight.is_meta:
        output.weight = inputs.weight
    missing = [name for name, t in model.named_parameters() if t.is_meta]
    if missing:
        raise ModelUnavailableError(f"The checkpoint of {entry.model_id} lacks weights: {', '.join(missing[:3])}.")


def load_text_side(entry: CatalogEntry) -> tuple[Any, Any | None]:
    """The tokenizer, and the processor for vision models (None for text models)."""
    if entry.kind == "vision":
        processor = AutoProcessor.from_pretrained(entry.source, trust_remote_code=entry.trust_remote_code)
        return processor.tokenizer, processor
    return AutoTokenizer.from_pretrained(entry.source, trust_remote_code=entry.trust_remote_code), None


def _check_source(entry: CatalogEntry) -> None:
    if entry.bundled and not (Path(entry.source) / "config.json").exists():
        raise ModelUnavailableError(
            f"The bundled model {entry.model_id} is missing from {entry.source}. "
            "Rebuild it with the scripts in scripts/ (see README)."
        )


def _unavailable_message(entry: CatalogEntry, exc: Exception) -> str:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"Cannot load {entry.model_id}: the Hugging Face Hub is not reachable from here and no local "
        f"copy was found (set models.local_paths in the config to a downloaded folder). Details: {first_line}"
    )
