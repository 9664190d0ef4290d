"""Step-level batching for a resident model: concurrent requests share each forward pass.

One Batcher per resident model. A request that finds the model idle (nothing else waiting or running) is
prefilled at once; when several arrive together at an idle model, the batcher gathers the burst (until QUIET_S pass
without a new arrival, at most WINDOW_S) and prefills it in one pass; requests that arrive while a batch runs are
prefilled together, all of those waiting in one left-padded pass, and join it before the next step; those that
arrive during that prefill get one more before the step (a burst's first tokens wait for a prefill, not a step).
A row leaves the batch the step after it ends (eos, token limit, Stop, consumer gone), so a
finished row never holds the others back. Works for any model whose DynamicCache has plain layers,
MLA (DeepseekV2/V3) included, where transformers' paged continuous batching fails. Qwen2/Llama use it
too: transformers 5.23's continuous batching takes only per-request temperature/top-k/top-p, so it
would drop the repetition penalty (the UI's default is 1.1) and per-request seeds.

Seeds: every request samples from its own torch.Generator seeded with its seed, so a seeded request
draws the same random numbers whoever shares its batch (results then match up to float rounding of
the batched matmuls). Without a seed the generator is seeded from the OS.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from core.errors import BusyError, GenerationError
from core.generation.prompting import ContextPlan
from core.generation.sampling import SamplingParams
from core.generation.stream import PREFILL_CHUNK, GenerationStats, MeteredStreamer, TextStream, readable_error
from core.models.loading import LoadedModel
from core.serving.batch_state import BatchState, cache_is_plain, prefill
from core.serving.row_sampling import RowSampler

WINDOW_S = 0.02  # a burst arriving at an idle model waits at most this long for companions before prefilling
QUIET_S = 0.004  # ... and no longer than this after the latest arrival: a burst that has stopped growing goes at once
MAX_ROWS = 16  # rows decoding at once; later requests wait for a free row
MAX_WAITING = 64  # requests waiting for a row before new ones are told the server is busy
PAD_ID = 0  # the token left padding puts before shorter prompts: any id does, its positions are masked out


@dataclass(eq=False)
class Row:
    """One request inside the batcher."""

    prompt: list[int]
    params: SamplingParams
    sampler: RowSampler
    streamer: MeteredStreamer
    stop: threading.Event
    abort: threading.Event = field(default_factory=threading.Event)  # consumer gone
    released: threading.Event = field(default_factory=threading.Event)  # the batcher no longer holds it
    new_tokens: int = 0
    error: BaseException | None = None

    @property
    def cancelled(self) -> bool:
        return self.stop.is_set() or self.abort.is_set()


class Batcher:
    """Serves every request for one resident model; a scheduler thread runs only while there is work."""

    def __init__(self, loaded: LoadedModel, max_rows: int = MAX_ROWS, window_s: float = WINDOW_S,
                 max_waiting: int = MAX_WAITING, quiet_s: float = QUIET_S) -> None:
        self.loaded, self.max_rows, self.window_s, self.max_waiting = loaded, max_rows, window_s, max_waiting
        self.quiet_s = quiet_s
        self._last_arrival = 0.0  # time.monotonic() of the latest submit
        self._lock = threading.Lock()
        self._pending: list[Row] = []
        self._running: list[Row] = []
        self._solo = 0  # requests served outside the batch (long or multimodal prompts)
        self._thread: threading.Thread | None = None
        self.peak_rows = 0  # most rows that shared one forward pass so far
        self._plain = cache_is_plain(loaded.model)
        self._eos = _eos_ids(loaded)

    def stream(self, inputs: dict[str, torch.Tensor], params: SamplingParams, stop: threading.Event,
               timeout_s: float, plan: ContextPlan | None) -> TextStream:
        """A TextStream for this request: batched when possible, else the single-request path (counted).

        Pixels (vision inputs), prompts over PREFILL_CHUNK tokens and models whose cache this batcher cannot
        reshape take the single-request path, still counted as running so the registry never evicts them.
        """
        ids = inputs["input_ids"]
        if self._plain and set(inputs) <= {"input_ids", "attention_mask"} and ids.shape[0] == 1 \
                and ids.shape[1] <= PREFILL_CHUNK:
            return BatchedStream(self, inputs, params, stop, timeout_s, plan)
        return CountedStream(self, inputs, params, stop, timeout_s, plan)

    def active(self) -> int:
        """Requests being served or waiting for a row now."""
        with self._lock:
            return len(self._pending) + len(self._running) + self._solo

    def waiting(self) -> int:
        """Requests waiting for a free row."""
        with self._lock:
            return len(self._pending)

    def submit(self, row: Row) -> None:
        """Queue a row (BusyError when too many wait); start the scheduler thread if it is not running."""
        with self._lock:
            if len(self._pending) >= self.max_waiting:
                raise BusyError(f"The server is busy: {len(self._pending)} requests are already waiting for "
                                f"{self.loaded.key.model_id}. Please try again in a moment.")
            self._pending.append(row)
            self._last_arrival = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
                self._thread.start()

    def withdraw(self, row: Row) -> None:
        """Release a row that never got a batch slot (its consumer left while it waited)."""
        with self._lock:
            waiting = row in self._pending
            if waiting:
                self._pending.remove(row)
        if waiting:
            row.streamer.end()
            row.released.set()

    def settle(self, timeout_s: float = 1.0) -> None:
        """Wait for the scheduler thread to exit when nothing is left to serve (tests, unload)."""
        with self._lock:
            thread = self._thread if not self._pending and not self._running else None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def count_solo(self, delta: int) -> None:
        """Count a request served outside the batch (+1 when it starts, -1 when it ends)."""
        with self._lock:
            self._solo += delta

    def _take(self, state: BatchState | None) -> list[Row] | None:
        """Rows to admit now; None when the thread should exit (nothing running, nothing pending)."""
        if state is None and self.waiting() > 1:
            self._gather()  # a burst: let its companions arrive (a lone request goes at once; window_s=0: none wait)
        with self._lock:
            gone = [r for r in self._pending if r.cancelled]  # stopped while waiting: no slot needed
            self._pending = [r for r in self._pending if not r.cancelled]
            room = self.max_rows - (len(state.rows) if state else 0)
            taken, self._pending = self._pending[:room], self._pending[room:]
            self._running.extend(taken)
            if state is None and not taken:
                self._thread = None
        for row in gone:
            row.streamer.end()
            row.released.set()
        return taken if state is not None or taken else None

    def _gather(self) -> None:
        """Wait until the burst stops growing (quiet_s without an arrival), fills the rows, or window_s passed."""
        deadline = time.monotonic() + self.window_s
        while True:
            now = time.monotonic()
            with self._lock:
                quiet_until, full = self._last_arrival + self.quiet_s, len(self._pending) >= self.max_rows
            wake = min(quiet_until, deadline)
            if full or now >= wake:
                return
            time.sleep(wake - now)

    def _run(self) -> None:
        state: BatchState | None = None
        with torch.inference_mode():  # entered once per busy period, not once per step
            while True:
                new = self._take(state)
                if new is None:
                    return
                rows = (state.rows if state else []) + new
                try:
                    state = self._admit(state, new)
                    if new and state is not None:  # rows that arrived during that prefill join before the step:
                        late = self._take(state) or []  # a burst's first-token time is then one prefill more,
                        rows += late  # not a decode step more (at most two prefills per step)
                        state = self._admit(state, late)
                    state = self._step(state)
                except BaseException as exc:  # every row in flight gets the readable error; memory is released
                    state = None
                    self._fail(rows, exc)

    def _admit(self, state: BatchState | None, new: list[Row]) -> BatchState | None:
        """Prefill new rows in one pass and add them to the batch; the rows going on (None: none)."""
        new = [r for r in new if not self._finish_if_done(r)]
        if new:
            joined, logits = prefill(self.loaded.model, [r.prompt for r in new], new, PAD_ID, self.loaded.device)
            joined.next_ids = self._emit(joined.rows, logits)
            joined = self._drop_finished(joined)
            if joined is not None and state is not None:
                state.extend(joined)
            state = state or joined
        return state

    def _step(self, state: BatchState | None) -> BatchState | None:
        """One decode step for every row; the rows still going."""
        if state is None:
            return None
        self.peak_rows = max(self.peak_rows, len(state.rows))
        state.next_ids = self._emit(state.rows, state.step(self.loaded.model))
        return self._drop_finished(state)

    def _emit(self, rows: list[Row], logits: torch.Tensor) -> torch.Tensor:
        """Choose each row's next token with its own settings and stream it; (batch,) token ids."""
        chosen = logits.argmax(dim=-1)  # (batch,) right for every plain greedy row, in one op
        for i, row in enumerate(rows):
            if not row.sampler.plain_greedy:
                chosen[i] = row.sampler.next_token(logits[i])
        for row, token in zip(rows, chosen.tolist(), strict=True):  # one device -> host copy per step
            row.sampler.record(token)
            if not row.cancelled:
                row.new_tokens += 1
                row.streamer.put(torch.tensor([token]))
        return chosen

    def _drop_finished(self, state: BatchState) -> BatchState | None:
        keep = [i for i, row in enumerate(state.rows) if not self._finish_if_done(row)]
        if not keep:
            return None
        if len(keep) < len(state.rows):
            state.keep(keep)
        return state

    def _finish_if_done(self, row: Row) -> bool:
        last = row.sampler.last_token
        done = row.cancelled or row.new_tokens >= row.params.max_new_tokens or (last is not None and last in self._eos)
        if done:
            self._release(row)
        return done

    def _release(self, row: Row) -> None:
        with self._lock:
            if row in self._running:
                self._running.remove(row)
        row.streamer.end()
        row.released.set()

    def _fail(self, rows: list[Row], exc: BaseException) -> None:
        for row in rows:
            row.error = exc
            self._release(row)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class BatchedStream(TextStream):
    """The consumer side of a batched request: same iteration, stats and errors as TextStream."""

    def __init__(self, batcher: Batcher, *args: Any) -> None:
        super().__init__(batcher.loaded, *args)
        self.batcher = batcher

    def __iter__(self) -> Iterator[str]:
        streamer = MeteredStreamer(self.loaded.tokenizer, self.timeout_s)
        streamer.next_tokens_are_prompt = False
        prompt = self.inputs["input_ids"][0].tolist()
        row = Row(prompt, self.params, RowSampler(self.params, prompt, self.loaded.device), streamer, self.stop)
        start = time.perf_counter()
        self.batcher.submit(row)  # before the try: a refused row was never queued
        try:
            yield from streamer
        except queue.Empty:
            raise GenerationError(f"The model produced nothing for {self.timeout_s:.0f} s and was stopped.") from None
        finally:
            row.abort.set()  # a closed consumer (disconnect, error) leaves the batch at the next step
            self.batcher.withdraw(row)  # or the queue at once, if it was still waiting for a row
            row.released.wait(self.timeout_s)
            self.batcher.settle()
        if row.error is not None:
            raise readable_error(row.error)
        first = streamer.first_token_at or time.perf_counter()
        self.stats = GenerationStats(len(prompt), row.new_tokens, first - start, time.perf_counter() - start,
                                     self.loaded.device, self.loaded.key.precision.value, self.stop.is_set())


class CountedStream(TextStream):
    """The single-request path, counted as active so the registry does not evict its model."""

    def __init__(self, batcher: Batcher, *args: Any) -> None:
        super().__init__(batcher.loaded, *args)
        self.batcher = batcher

    def __iter__(self) -> Iterator[str]:
        self.batcher.count_solo(1)
        try:
            yield from super().__iter__()
        finally:
            self.batcher.count_solo(-1)


def _eos_ids(loaded: LoadedModel) -> set[int]:
    eos = loaded.model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if loaded.tokenizer.eos_token_id is not None:
        ids.add(int(loaded.tokenizer.eos_token_id))
    return ids
