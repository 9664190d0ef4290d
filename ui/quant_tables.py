"""A comparison run as three short tables (quality, speed, memory), a legend, a noise line and chart data."""

from __future__ import annotations

import pandas as pd

from core.quant.comparison import PREFILL_PASSES, ComparisonRun, PrecisionResult

QUALITY = ("precision", "perplexity", "Δ ppl %", "KL mean", "KL p99", "KL max", "same top-1 %", "Δp RMS",
           "greedy agree %")
SPEED = ("precision", "load s", "prefill s", "TTFT s", "decode tok/s")
MEMORY = ("precision", "backend", "bits", "memory MB", "quantized %", "bytes ratio")
CHARTS = (("memory MB", "Resident memory (MB)"), ("decode tok/s", "Decode tokens/s"), ("KL mean", "Mean KL vs full"))
LEGEND = """\
**Quality** is measured against the full-precision model on the bundled reference text; ± is one standard error.
**Δ ppl %**: perplexity change (lower perplexity = the text looks more likely to the model).
**KL** (Kullback-Leibler divergence, nats per token): how far the next-token probabilities moved from full
precision's; 0 = identical, larger = further from full precision. **p99 / max**: the worst tokens.
**same top-1 %**: tokens where both models rank the same next token first. **Δp RMS**: typical change of the
probability given to the true next token. **greedy agree %**: share of full precision's greedy answer that this
precision reproduces token for token. **Speed**: **prefill s** is the prompt's forward pass inside the
same answer whose **TTFT s** (time to first token) is shown, so TTFT is never below it; load time is apart from both.
**Memory**: resident weights; **bits** is the row's width, with any part stored wider in brackets (CPU int4 keeps
an untied lm_head in 8 bits); **quantized %** of the weights are stored in low bits, at **bytes ratio** of their
full-precision size, all widths together (the notes say which part is stored at which width)."""
NOISE_SIGMAS = 2.0  # a difference under two standard errors cannot be told from noise


def precision_name(r: PrecisionResult, run: ComparisonRun) -> str:
    """The short name a row and a chart bar go by (the reference marked)."""
    return f"{r.precision} (ref)" if r.precision == run.reference_precision else r.precision


def quality_frame(run: ComparisonRun) -> pd.DataFrame:
    """Quality columns, one row per precision; `±` cells carry one standard error."""
    return pd.DataFrame([[precision_name(r, run), *_quality_cells(r)] for r in run.results], columns=list(QUALITY))


def _quality_cells(r: PrecisionResult) -> list[str]:
    q, blank = r.quality, ["—"] * (len(QUALITY) - 1)
    if r.error:
        return blank
    if q is None:  # a remote row: perplexity from its prompt logprobs at most
        ppl = "—" if "perplexity" in r.unmeasured else f"{r.perplexity:.3f}"
        change = "—" if "ppl change %" in r.unmeasured else f"{100 * r.perplexity_change:+.2f}"
        return [ppl, change, *blank[2:-1], f"{100 * r.greedy_agreement:.1f}"]
    return [f"{r.perplexity:.3f}", _pm(100 * (q.perplexity_ratio.value - 1), 100 * q.perplexity_ratio.error, 2, True),
            _pm(q.kl_mean.value, q.kl_mean.error, 5), f"{q.kl_quantiles['p99']:.3g}", f"{q.kl_quantiles['max']:.3g}",
            _pm(100 * q.same_top.value, 100 * q.same_top.error, 1), f"{q.delta_p_rms.value:.3g}",
            f"{100 * r.greedy_agreement:.1f}"]


def speed_frame(run: ComparisonRun) -> pd.DataFrame:
    """Timing columns (seconds, tokens per second)."""
    rows = [[precision_name(r, run), *_cells(r, ("load s", r.load_s, 2), ("prefill s", r.prefill_s, 4),
                                             ("TTFT s", r.ttft_s, 4), ("decode tok/s", r.tokens_per_s, 1))]
            for r in run.results]
    return pd.DataFrame(rows, columns=list(SPEED))


def memory_frame(run: ComparisonRun) -> pd.DataFrame:
    """Backend and storage columns."""
    rows = [[precision_name(r, run), r.backend, bits_label(r),
             *_cells(r, ("memory MB", r.memory_bytes / 2**20, 3), ("quantized share", 100 * r.quantized_share, 1),
                     ("quantized bytes ratio", r.quantized_ratio, 3))]
            for r in run.results]
    return pd.DataFrame(rows, columns=list(MEMORY))


def bits_label(r: PrecisionResult) -> str:
    """The row's bits, and each quantized part stored at another width, e.g. "4 (lm_head 8)"."""
    other = [part.rsplit(" int", 1) for part in r.stored_as if not part.endswith(f" int{r.bits}")]
    return f"{r.bits} ({', '.join(f'{name} {bits}' for name, bits in other)})" if other else str(r.bits)


def chart_frames(run: ComparisonRun) -> list[pd.DataFrame]:
    """One frame per chart in CHARTS: the rows that measured its column, in the run's order."""
    rows = [r for r in run.results if not r.error]
    values = {"memory MB": [None if "memory MB" in r.unmeasured else r.memory_bytes / 2**20 for r in rows],
              "decode tok/s": [r.tokens_per_s for r in rows],
              "KL mean": [r.quality.kl_mean.value if r.quality else None for r in rows]}
    frame = pd.DataFrame({"precision": [precision_name(r, run) for r in rows], **values})
    return [frame[frame[column].notna()][["precision", column]] for column, _ in CHARTS]


def notes_markdown(run: ComparisonRun) -> str:
    """Per row: the kernel, and what could not be measured or why the row failed."""
    lines = []
    for r in run.results:
        parts = [p for p in (r.error, r.kernel and f"kernel: {r.kernel}", r.note, r.kernel_note) if p]
        if r.stored_as and not r.error:
            parts.append(f"quantized as: {', '.join(r.stored_as)}")
        if r.full_precision_parts and not r.error:
            parts.append(f"kept unquantized: {', '.join(r.full_precision_parts)} ({r.dtype})")
        lines.append(f"- **{precision_name(r, run)}**: " + "; ".join(parts) if parts else "")
    return "\n".join(line for line in lines if line)


def noise_line(run: ComparisonRun) -> str:
    """Which differences from full precision are within run-to-run noise, and how noisy the timings were."""
    within, beyond = [], []
    for r in run.results:
        if r.error or r.quality is None or r.precision == run.reference_precision:
            continue
        (within if r.quality.perplexity_within_noise else beyond).append(r.precision)
    timed = [r.prefill_spread for r in run.results if not r.error and r.prefill_s > 0]
    parts = []
    if within:
        parts.append(f"perplexity of {', '.join(within)} is within noise of full precision (under 2 standard errors)")
    if beyond:
        parts.append(f"perplexity of {', '.join(beyond)} differs beyond noise")
    if timed:
        parts.append(f"timings varied up to {100 * max(timed):.0f} % between {PREFILL_PASSES} repeated prefill "
                     "passes, so speed differences smaller than that are noise (one answer per precision)")
    return ("**Within run-to-run noise:** " + "; ".join(parts) + ".") if parts else ""


def _pm(value: float, error: float, digits: int, signed: bool = False) -> str:
    return f"{value:{'+' if signed else ''}.{digits}f} ± {error:.{digits}f}"


def _cells(r: PrecisionResult, *values: tuple[str, float, int]) -> list[float | None]:
    """Rounded values, None where the row failed or could not measure the column (named as in report.COLUMNS)."""
    return [None if r.error or column in r.unmeasured else round(v, digits) for column, v, digits in values]
