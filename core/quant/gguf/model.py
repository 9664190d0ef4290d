"""A GGUF file served by llama.cpp (llama-cpp-python), behind the small part of the transformers model interface
the comparison uses: model(ids).logits for every position, parameters() for the device, config for the window."""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from core.quant.weights import WeightReport, add_stored, report_of

LOGIT_CHUNK = 64  # positions per decode when all logits are wanted (llama.cpp's output buffer: chunk x vocab)
FLOAT_TYPES = ("F32", "F16", "BF16")
# GGUF tensor names -> the parts a person would call them (llama.cpp's names, e.g. blk.0.ffn_gate_inp.weight)
PARTS = (("token_embd.", "embeddings"), ("output.", "lm_head"), ("norm", "norms"), ("ffn_gate_inp", "router"),
         ("exp_probs_b", "router"), ("bias", "biases"))


@dataclass(frozen=True)
class GGUFMemory:
    file_bytes: int  # the .gguf, mapped with mmap: file-backed pages, shared with the page cache
    context_bytes: int  # llama.cpp's own buffers: KV cache, compute and output, as it reports them

    @property
    def total(self) -> int:
        return self.file_bytes + self.context_bytes

    def describe(self) -> str:
        return (f"{self.file_bytes / 2**20:,.1f} MB GGUF file mapped with mmap (file-backed, shared with the page "
                f"cache) + {self.context_bytes / 2**20:,.1f} MB llama.cpp buffers (KV cache, compute, output)")


class GGUFCausalLM:
    """llama_cpp.Llama with logits for every position; one call at a time (a llama.cpp context is not shared)."""

    def __init__(self, llm: Any, config: Any, path: Path, memory: GGUFMemory) -> None:
        self.llm, self.config, self.path, self.memory = llm, config, path, memory
        self.lock = threading.RLock()
        self.weights, self.types = gguf_weights(path)

    def __call__(self, input_ids: torch.Tensor, logits_to_keep: int = 0, **_: Any) -> SimpleNamespace:
        """Logits (1, seq, vocab) of a (1, seq) batch, from an empty cache; logits_to_keep=N > 0: the last N
        positions only, as transformers' models do."""
        ids = [int(t) for t in input_ids[0]]
        with self.lock:
            logits = self._last_logits(ids) if logits_to_keep == 1 else self._all_logits(ids)
        if logits_to_keep > 1:
            logits = logits[-logits_to_keep:]
        return SimpleNamespace(logits=torch.from_numpy(logits)[None])

    def _all_logits(self, ids: list[int]) -> np.ndarray:
        llm, vocab = self.llm, self.llm.n_vocab()
        llm.reset()
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        out = np.empty((len(ids), vocab), dtype=np.float32)
        for start in range(0, len(ids), LOGIT_CHUNK):
            chunk = ids[start:start + LOGIT_CHUNK]
            llm._batch.set_batch(batch=chunk, n_past=start, logits_all=True)  # what logits_all=True does per batch
            llm._ctx.decode(llm._batch)
            rows = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(chunk) * vocab,))
            out[start:start + len(chunk)] = rows.reshape(len(chunk), vocab)
        llm.reset()
        return out

    def _last_logits(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        vocab = self.llm.n_vocab()
        last = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(vocab,)).copy()
        return last[None]

    def parameters(self):  # noqa: ANN201 - an iterator of tensors, like nn.Module.parameters()
        """One empty CPU tensor: llama.cpp runs on the CPU here, and code asks the first parameter's device."""
        yield torch.empty(0)

    def note(self) -> str:
        """Which tensors llama.cpp quantized to what, and how the memory figure is made up."""
        kinds = ", ".join(f"{part} {kind}" for part, kind in self.types.items())
        return f"quantized by llama.cpp: {kinds}. Memory: {self.memory.describe()}."

    def close(self) -> None:
        self.llm.close()


_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()  # every llama_cpp.Llama open_llama made and still alive


@atexit.register
def _close_all() -> None:
    """Free llama.cpp models before interpreter teardown (their __del__ fails noisily once ctypes is gone)."""
    for llm in list(_OPEN):
        llm.close()


def gguf_weights(path: Path, full_element_size: int = 4) -> tuple[WeightReport, dict[str, str]]:
    """Quantized vs float tensors of a GGUF file, and each part's tensor types (e.g. {'embeddings': 'Q8_0'})."""
    from gguf import GGUFReader

    total = 0
    kept: set[str] = set()
    types: dict[str, set[str]] = {}
    stored: dict[tuple[str, int], tuple[int, int]] = {}  # (part, bits) -> (params, bytes)
    for tensor in GGUFReader(path).tensors:
        n, kind, part = int(tensor.n_elements), tensor.tensor_type.name, _part(tensor.name)
        total += n
        if kind in FLOAT_TYPES:
            kept.add(part)
            continue
        add_stored(stored, part, _bits(kind), n, int(tensor.n_bytes))
        types.setdefault(part, set()).add(kind)
    report = report_of(stored, total, full_element_size, kept)
    return report, {part: "/".join(sorted(kinds)) for part, kinds in sorted(types.items())}


def _bits(kind: str) -> int:
    """A ggml type's nominal width: Q4_0 -> 4, Q6_K -> 6, IQ4_XS -> 4 (0 when its name has no digit)."""
    return next((int(c) for c in kind if c.isdigit()), 0)


def _part(name: str) -> str:
    for key, part in PARTS:
        if name.startswith(key) if key.endswith(".") else key in name:
            return part
    return "linear layers"


def open_llama(path: Path, n_ctx: int) -> tuple[Any, GGUFMemory]:
    """llama_cpp.Llama on path (mmap, CPU threads of this machine) and the memory llama.cpp says it holds."""
    import llama_cpp

    threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    with _BufferLog() as log:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=512, n_threads=threads,
                              n_threads_batch=threads, use_mmap=True, logits_all=False, verbose=False)
    _OPEN.add(llm)
    return llm, GGUFMemory(path.stat().st_size, log.context_bytes())


class _BufferLog:
    """Collects llama.cpp's "... buffer size = N MiB" log lines while a model and its context are created."""

    _lock = threading.Lock()  # llama.cpp's log callback is process-wide

    def __enter__(self) -> _BufferLog:
        import llama_cpp

        self.lines: list[str] = []
        self._lock.acquire()

        @llama_cpp.llama_log_callback
        def collect(_level: int, text: bytes, _user: ctypes.c_void_p) -> None:
            self.lines.append(text.decode("utf-8", "replace"))

        self._callback = collect  # keep a reference: llama.cpp holds only the C pointer
        llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
        return self

    def __exit__(self, *exc: object) -> None:
        import llama_cpp
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
        self._lock.release()

    def context_bytes(self) -> int:
        """KV cache, compute and output buffers (the model buffer is the mmap'd file, counted apart)."""
        total = 0.0
        for line in self.lines:
            match = re.search(r"(KV|compute|output|RS) buffer size =\s*([\d.]+) MiB", line)
            if match:
                total += float(match.group(2)) * 2**20
        return int(total)
