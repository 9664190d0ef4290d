"""Where llama.cpp's converter lives: it ships only in llama-cpp-python's source distribution, never in a wheel.

`make install-dev` (or `python -m core.quant.gguf.converter`) fetches that sdist with pip once and keeps only the
converter (convert_hf_to_gguf.py, conversion/, gguf-py/, LICENSE) in the cache, under the installed version:
the converter then always matches the llama.cpp that loads its files. LLAMA_CPP_CONVERTER overrides it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

from core.errors import UnsupportedPrecisionError
from core.paths import cache_root

PACKAGE = "llama-cpp-python"
KEEP = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")  # under vendor/llama.cpp/
SCRIPT = "convert_hf_to_gguf.py"


def version() -> str:
    """The installed llama-cpp-python version, or '' when it is not installed."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return ""


def converter_dir() -> Path:
    """Where the converter for the installed version is (or would be) kept."""
    override = os.environ.get("LLAMA_CPP_CONVERTER")
    if override:
        return Path(override)
    return cache_root() / "llama.cpp-converter" / version()


def locate() -> Path:
    """The converter folder, fetching it with pip if it is missing; a readable error when that fails."""
    folder = converter_dir()
    if (folder / SCRIPT).exists():
        return folder
    if os.environ.get("LLAMA_CPP_CONVERTER"):
        raise UnsupportedPrecisionError(f"LLAMA_CPP_CONVERTER={folder} holds no {SCRIPT}.")
    try:
        return fetch()
    except (OSError, subprocess.CalledProcessError, tarfile.TarError) as exc:
        raise UnsupportedPrecisionError(
            f"llama.cpp's converter is not in {folder} and could not be fetched ({exc}). Run "
            f"`python -m core.quant.gguf.converter` where the package index is reachable, or set LLAMA_CPP_CONVERTER "
            "to a llama.cpp checkout.") from None


def fetch() -> Path:
    """pip download the sdist of the installed version and keep its converter in the cache (atomically)."""
    found = version()
    if not found:
        raise OSError(f"{PACKAGE} is not installed")
    target = converter_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
                        "--disable-pip-version-check", f"{PACKAGE}=={found}", "-d", tmp],
                       check=True, capture_output=True)
        sdist = next(Path(tmp).glob("*.tar.gz"))
        unpacked = Path(tmp) / "converter"
        _extract_converter(sdist, unpacked)
        if not (unpacked / SCRIPT).exists():
            raise OSError(f"{sdist.name} carries no vendor/llama.cpp/{SCRIPT}")
        if target.exists():
            shutil.rmtree(target)  # a folder without the script: left by an interrupted fetch
        os.replace(unpacked, target)
    return target


def _extract_converter(sdist: Path, out: Path) -> None:
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            inner = parts[1].removeprefix("vendor/llama.cpp/") if len(parts) == 2 else ""
            if inner == parts[-1] or not inner.startswith(KEEP) or not (member.isfile() or member.isdir()):
                continue
            member.name = inner
            tar.extract(member, out, filter="data")


if __name__ == "__main__":
    print(fetch())
