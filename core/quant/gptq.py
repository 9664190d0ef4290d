"""GPTQ through GPTQModel: calibrate once, cache the checkpoint atomically, load it (or a pre-quantized one)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from core.models.catalog import CatalogEntry
from core.paths import CALIBRATION_TEXT, cache_root
from core.quant.stages import report_stage

GROUP_SIZE = 32  # divides every in_features of the bundled models (MoE experts: 64)
COMPLETE = "playground-complete.json"  # written last, inside the temp dir, before the rename


def calibration_texts(limit: int = 128) -> list[str]:
    """Passages of the bundled calibration text (training split), blank-line separated."""
    return [p.strip() for p in CALIBRATION_TEXT.read_text(encoding="utf-8").split("\n\n") if p.strip()][:limit]


def checkpoint_dir(entry: CatalogEntry, bits: int) -> Path:
    """Where the GPTQ checkpoint of entry at bits lives; the name changes with the weights and calibration."""
    fingerprint = hashlib.sha256()
    for part in (entry.model_id, entry.source, str(bits), str(GROUP_SIZE), _weights_stamp(entry.source)):
        fingerprint.update(part.encode())
    fingerprint.update(CALIBRATION_TEXT.read_bytes())
    safe = entry.model_id.replace("/", "--")
    return cache_root() / "gptq" / f"{safe}-{bits}bit-g{GROUP_SIZE}-{fingerprint.hexdigest()[:12]}"


def is_complete(path: Path) -> bool:
    """A usable cached checkpoint: config + weights + our completion mark."""
    return (path / COMPLETE).exists() and (path / "config.json").exists()


def needs_calibration(entry: CatalogEntry, bits: int) -> bool:
    """True when loading entry at bits would calibrate first (no pre-quantized source, nothing in the cache)."""
    return not is_gptq_checkpoint(entry.source) and not is_complete(checkpoint_dir(entry, bits))


def is_gptq_checkpoint(source: str) -> bool:
    """True for a local folder already holding a GPTQ checkpoint (GPTQModel or AutoGPTQ format)."""
    folder = Path(source)
    if (folder / "quantize_config.json").exists():
        return True
    config = folder / "config.json"
    if not config.exists():
        return False
    quant = json.loads(config.read_text(encoding="utf-8")).get("quantization_config") or {}
    return str(quant.get("quant_method", "")).lower() == "gptq"


def quantize_to_cache(entry: CatalogEntry, bits: int, device: str) -> Path:
    """Calibrate entry at bits with GPTQModel and cache the result; a crash leaves no usable folder."""
    from gptqmodel import GPTQModel, QuantizeConfig

    target = checkpoint_dir(entry, bits)
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        config = QuantizeConfig(bits=bits, group_size=GROUP_SIZE, desc_act=False, sym=True)
        texts = calibration_texts()
        with _quiet():
            report_stage("GPTQ calibration 1/3: loading the full model")
            model = GPTQModel.load(entry.source, config, device=device, dtype=_dtype(device),
                                   trust_remote_code=entry.trust_remote_code)
            report_stage(f"GPTQ calibration 2/3: quantizing layer by layer on {len(texts)} passages (first use only)")
            model.quantize(texts, batch_size=4)
            report_stage("GPTQ calibration 3/3: saving the checkpoint to the cache")
            model.save(str(tmp))
        (tmp / COMPLETE).write_text(json.dumps({"model_id": entry.model_id, "bits": bits}), encoding="utf-8")
        _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_checkpoint(path: str | Path, device: str, backend: str = "auto") -> Any:
    """The transformers model inside a GPTQ checkpoint, with GPTQModel's `backend` kernel (experts included)."""
    from gptqmodel import BACKEND, GPTQModel

    report_stage("loading the GPTQ checkpoint")
    with _quiet():
        # GPTQModel's kernels need 16-bit activations: unquantized parts load in bf16/fp16, even on CPU
        return GPTQModel.load(str(path), device=device, backend=BACKEND(backend)).model


def _dtype(device: str) -> Any:
    """Calibrate in fp32 on CPU (GPTQModel would pick bf16, ~5x slower there); its own choice on CUDA."""
    import torch

    return torch.float32 if device == "cpu" else "auto"


def _quiet() -> contextlib.AbstractContextManager[Any]:
    """GPTQModel prints progress bars and whole configs to stdout: keep the app's and bench's output readable."""
    return contextlib.redirect_stdout(io.StringIO())


def _publish(tmp: Path, target: Path) -> None:
    """Rename the finished temp folder into place; a concurrent run that got there first wins."""
    if target.exists() and not is_complete(target):
        shutil.rmtree(target, ignore_errors=True)  # left by an old interrupted run
    try:
        os.replace(tmp, target)
    except OSError:
        if not is_complete(target):
            raise


def _weights_stamp(source: str) -> str:
    folder = Path(source)
    if not folder.is_dir():
        return source
    files = sorted(folder.glob("*.safetensors"))
    return ";".join(f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in files)
