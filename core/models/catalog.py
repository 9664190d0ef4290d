"""The models the app offers: bundled tiny checkpoints and the real DeepSeek Hub ids."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from core.errors import UnknownModelError
from core.paths import ASSETS

Kind = Literal["text", "vision"]
Family = Literal["deepseek_v3", "deepseek_v2", "qwen2", "llama", "deepseek_vl", "deepseek_vl_hybrid"]

BUNDLED_PREFIX = "bundled/"


@dataclass(frozen=True)
class CatalogEntry:
    model_id: str  # what users pick; a Hub id or "bundled/<name>"
    family: Family
    kind: Kind
    source: str  # what from_pretrained receives: a Hub id or a local folder
    description: str
    context_window: int  # tokens the app lets a prompt + answer use
    trust_remote_code: bool = False
    params: str = ""  # human size, e.g. "16B total / 2.4B active"
    adapter_path: str | None = None  # a LoRA adapter folder applied on top of source (fine-tuned models)

    @property
    def bundled(self) -> bool:
        return self.model_id.startswith(BUNDLED_PREFIX)

    @property
    def moe(self) -> bool:
        return self.family in ("deepseek_v2", "deepseek_v3")


def _bundled(name: str, family: Family, kind: Kind, description: str, window: int, params: str) -> CatalogEntry:
    path = ASSETS / "models" / name
    return CatalogEntry(BUNDLED_PREFIX + name, family, kind, str(path), description, window, params=params)


BUNDLED: tuple[CatalogEntry, ...] = (
    _bundled("deepseek-v3-tiny", "deepseek_v3", "text",
             "Tiny DeepseekV3 (MLA + MoE) trained offline on Python's docs; bundled.", 32768, "1.7M"),
    _bundled("qwen2-tiny", "qwen2", "text",
             "Tiny dense Qwen2 (R1-Distill-Qwen architecture) trained offline; bundled.", 32768, "1.6M"),
    _bundled("deepseek-vl-tiny", "deepseek_vl", "vision",
             "Tiny DeepSeek-VL (SigLIP + Llama) trained offline on synthetic shapes; bundled.", 512, "1.4M"),
)

HUB: tuple[CatalogEntry, ...] = (
    CatalogEntry("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "qwen2", "text", "source",
                 "DeepSeek-R1 distilled into Qwen2.5-1.5B (reasoning).", 32768, params="1.8B"),
    CatalogEntry("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "qwen2", "text", "source",
                 "DeepSeek-R1 distilled into Qwen2.5-7B (reasoning).", 32768, params="7.6B"),
    CatalogEntry("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "llama", "text", "source",
                 "DeepSeek-R1 distilled into Llama-3.1-8B (reasoning).", 32768, params="8B"),
    CatalogEntry("deepseek-ai/deepseek-llm-7b-chat", "llama", "text", "source",
                 "DeepSeek LLM 7B chat.", 4096, params="7B"),
    CatalogEntry("deepseek-ai/deepseek-coder-1.3b-instruct", "llama", "text", "source",
                 "DeepSeek Coder 1.3B instruct.", 16384, params="1.3B"),
    CatalogEntry("deepseek-ai/DeepSeek-V2-Lite-Chat", "deepseek_v2", "text", "source",
                 "DeepSeek-V2-Lite chat (MLA + MoE).", 32768, params="16B total / 2.4B active"),
    CatalogEntry("deepseek-community/deepseek-vl-1.3b-chat", "deepseek_vl", "vision", "source",
                 "DeepSeek-VL 1.3B chat (converted for native transformers).", 4096, params="2B"),
    CatalogEntry("deepseek-community/deepseek-vl-7b-chat", "deepseek_vl_hybrid", "vision", "source",
                 "DeepSeek-VL 7B chat (hybrid SigLIP + SAM vision).", 4096, params="7B"),
)


@dataclass(frozen=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]

    def get(self, model_id: str) -> CatalogEntry:
        """The entry for model_id, or UnknownModelError naming the known ids."""
        for entry in self.entries:
            if entry.model_id == model_id:
                return entry
        raise UnknownModelError(model_id, [e.model_id for e in self.entries])

    def of_kind(self, kind: Kind) -> list[CatalogEntry]:
        return [e for e in self.entries if e.kind == kind]


def default_catalog(local_paths: dict[str, str] | None = None) -> Catalog:
    """Bundled + Hub entries; local_paths points Hub ids at local folders."""
    local = local_paths or {}
    hub = tuple(replace(e, source=local.get(e.model_id, e.model_id)) for e in HUB)
    return Catalog(BUNDLED + hub)
