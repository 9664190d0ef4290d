"""Remote models as rows of the comparison: the same prompt, greedy, measured through their servers.

A remote row has what a server can give: time to first token, decode tokens/s and tokens (through the same stream
as the Chat tab), greedy-answer agreement with the local full-precision answer (the remote's text re-tokenized
with the local tokenizer), and perplexity on the reference text when the server returns prompt logprobs (vLLM's
/completions with echo + logprobs). What it cannot give (memory, load time, prefill alone, KL and top-1 agreement,
which need full next-token distributions) is left empty and the note says so.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import replace

from core.errors import PlaygroundError
from core.generation.prompting import ChatRequest
from core.generation.stream import stream_chat
from core.models.loading import LoadedModel
from core.paths import REFERENCE_TEXT
from core.quant.comparison import ComparisonRun, PrecisionResult
from core.serving.events import Finished, TextDelta
from core.serving.registry import ModelRegistry
from core.serving.remotes import RemoteHub

ALWAYS_UNMEASURED = ("load s", "memory MB", "quantized share", "quantized bytes ratio", "prefill s", "mean KL",
                     "top-1 agree", "kept unquantized")
UNMEASURED_NOTE = "memory, load and prefill are the server's; KL and top-1 need full next-token distributions"


def add_remote_rows(run: ComparisonRun, registry: ModelRegistry, hub: RemoteHub, remote_ids: list[str],
                    progress: Callable[[float, str], None] | None = None) -> ComparisonRun:
    """The run with one more row per remote model (in the order given)."""
    if not remote_ids:
        return run
    reference = registry.get(run.model_id, run.reference_precision)
    with registry.hold(reference.key):
        answer = _reference_answer(run, reference)
        ref_ids = reference.tokenizer(REFERENCE_TEXT.read_text(encoding="utf-8")).input_ids[:run.quality_tokens]
        ref_text = reference.tokenizer.decode(ref_ids, skip_special_tokens=True)
        local_ppl = next((r.perplexity for r in run.results if r.precision == run.reference_precision
                          and not r.error), None)
        rows = []
        for i, remote_id in enumerate(remote_ids):
            if progress:
                progress(i / len(remote_ids), f"Measuring {remote_id}")
            rows.append(measure_remote(hub, remote_id, run, reference, answer, ref_text, local_ppl))
    return replace(run, results=(*run.results, *rows))


def measure_remote(hub: RemoteHub, remote_id: str, run: ComparisonRun, reference: LoadedModel, answer: str,
                   ref_text: str, local_ppl: float | None) -> PrecisionResult:
    """One remote's row; a remote that cannot answer gets a row that says why."""
    if not hub.serves(remote_id):
        return PrecisionResult(remote_id, remote_id, "remote", 0, error=f"{remote_id} is not a remote model.")
    model = hub.models[remote_id]
    head = {"precision": remote_id, "label": f"{remote_id} ({model.server.host})",
            "backend": f"remote: {model.config.model}", "bits": 0}
    try:
        text, done = _answer(hub, remote_id, run)
    except PlaygroundError as exc:
        return PrecisionResult(**head, error=str(exc))
    unmeasured, notes = list(ALWAYS_UNMEASURED), [UNMEASURED_NOTE]
    scored = model.server.prompt_logprobs(model.config.model, ref_text, model.config.api_key_env)
    ppl = change = 0.0
    if isinstance(scored, str):
        unmeasured += ["perplexity", "ppl change %"]
        notes.append(f"perplexity not measured: {scored}")
    else:
        ppl = math.exp(-sum(scored) / len(scored))
        if local_ppl:
            change = ppl / local_ppl - 1
        else:
            unmeasured.append("ppl change %")
    agree = text_agreement(reference.tokenizer, answer, text)
    return PrecisionResult(**head, output=text, ttft_s=done.stats.ttft_s, tokens_per_s=done.stats.tokens_per_s,
                           new_tokens=done.stats.new_tokens, perplexity=ppl, perplexity_change=change,
                           greedy_agreement=agree, unmeasured=tuple(unmeasured), note="; ".join(notes))


def text_agreement(tokenizer: object, reference: str, other: str) -> float:
    """Share of the reference answer's tokens that the other answer repeats at the same positions."""
    ref = tokenizer.encode(reference, add_special_tokens=False)  # type: ignore[attr-defined]
    got = tokenizer.encode(other, add_special_tokens=False)  # type: ignore[attr-defined]
    if not ref:
        return 1.0 if not got else 0.0
    return sum(a == b for a, b in zip(ref, got, strict=False)) / len(ref)


def _answer(hub: RemoteHub, remote_id: str, run: ComparisonRun) -> tuple[str, Finished]:
    events = list(hub.stream(ChatRequest(run.prompt), remote_id, run.params, threading.Event()))
    done = events[-1]
    assert isinstance(done, Finished)
    return "".join(e.text for e in events if isinstance(e, TextDelta)), done


def _reference_answer(run: ComparisonRun, reference: LoadedModel) -> str:
    for r in run.results:
        if r.precision == run.reference_precision and not r.error:
            return r.output
    stream = stream_chat(reference, ChatRequest(run.prompt), run.params, threading.Event())
    return "".join(stream)
