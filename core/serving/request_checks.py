"""What is checked before anything loads: settings, sizes, model, precision and GPTQ calibration."""

from __future__ import annotations

from dataclasses import dataclass

from core.config import LimitsConfig
from core.errors import BadSettingError, EmptyInputError, ModelUnavailableError, UnsupportedPrecisionError
from core.generation.batch_caption import CaptionBatchRequest
from core.generation.prompting import ChatRequest, PromptRequest, check_texts
from core.generation.sampling import SamplingParams
from core.generation.vision import VisionRequest
from core.models.catalog import source_problem
from core.models.hardware import Precision, parse_precision
from core.quant import gptq
from core.quant.backends import unavailable_reason
from core.quant.loaders import GPTQ_BITS
from core.serving.registry import ModelRegistry
from core.serving.remotes import RemoteHub

GenerationRequest = ChatRequest | VisionRequest | PromptRequest


@dataclass
class RequestChecks:
    """The Service's checks of a request before it is admitted."""

    registry: ModelRegistry
    limits: LimitsConfig
    remotes: RemoteHub
    allow_calibration: bool = True

    def validate(self, request: GenerationRequest | CaptionBatchRequest, model_id: str, precision: Precision | str,
                 params: SamplingParams) -> Precision:
        """Check settings, sizes, model and precision before anything loads; the parsed precision."""
        params.check(self.limits.max_new_tokens)
        request.check_size(self.limits.max_prompt_chars)
        check_texts({"model": model_id, "precision": getattr(precision, "value", precision)})
        entry = self.registry.catalog.get(model_id)
        if isinstance(request, VisionRequest | CaptionBatchRequest) and entry.kind != "vision":
            raise BadSettingError(f"{model_id} is a text model and cannot see images; pick a vision model.")
        if self.remotes.serves(model_id):  # the server picks its precision; the prompt is checked there
            if isinstance(request, PromptRequest):
                raise BadSettingError(f"{model_id} is served by a remote chat server, which takes conversations, "
                                      "not plain prompts; send it as a chat.")
            if isinstance(request, ChatRequest) and not (request.message.strip() or request.document.strip()):
                raise EmptyInputError("Type a message (or attach a document) first.")
            return self.registry.hardware.full_precision
        chosen = parse_precision(precision)
        problem = source_problem(entry)  # before anything loads: offline Hub ids fail here, not after "Loading"
        if problem:
            raise ModelUnavailableError(f"{model_id} cannot load here: {problem}")
        reason = unavailable_reason(entry, chosen, self.registry.hardware)
        if reason:
            raise UnsupportedPrecisionError(f"{chosen.label} is not available for {model_id}: {reason}")
        self.check_calibration(model_id, chosen)
        return chosen

    def check_calibration(self, model_id: str, precision: Precision) -> None:
        """Refuse a GPTQ precision that would calibrate on request when calibration is switched off."""
        if self.allow_calibration or precision not in GPTQ_BITS:
            return
        if any(m.key.model_id == model_id and m.key.precision == precision for m in self.registry.resident()):
            return
        if gptq.needs_calibration(self.registry.catalog.get(model_id), GPTQ_BITS[precision]):
            raise UnsupportedPrecisionError(
                f"{precision.label} of {model_id} would need a GPTQ calibration first, and calibration is switched "
                "off on this server (models.allow_calibration). Pick another precision.")
