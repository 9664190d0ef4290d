"""Run as a script in a subprocess: llama.cpp's converter or quantizer, isolated from the app.

    python core/quant/gguf/tool.py convert CONVERTER_DIR MODEL_DIR OUT.gguf [--pre NAME]
    python core/quant/gguf/tool.py quantize IN.gguf OUT.gguf FTYPE

A crash, sys.exit or native abort in llama.cpp's code then ends this process, never the app. `--pre`
names llama.cpp's pre-tokenizer for a BPE tokenizer the converter does not recognise by its hash (the
bundled models' own tokenizers split text with Qwen2's pattern, so their answer is "qwen2").
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path
from typing import Any


def convert(converter_dir: Path, model_dir: Path, out: Path, pre: str | None) -> None:
    """llama.cpp's convert_hf_to_gguf.py main(), f32 output, with an answer for unknown pre-tokenizers."""
    sys.path.insert(0, str(converter_dir))
    sys.path.insert(1, str(converter_dir / "gguf-py"))  # the converter's own gguf, same version as itself
    import convert_hf_to_gguf  # type: ignore[import-not-found]
    from conversion.base import ModelBase, TextModel  # type: ignore[import-not-found]

    _state_implied_hparams(ModelBase)
    if pre:
        _teach_pretokenizer(TextModel, pre)
    sys.argv = ["convert_hf_to_gguf.py", str(model_dir), "--outtype", "f32", "--outfile", str(out)]
    convert_hf_to_gguf.main()


def _teach_pretokenizer(text_model: Any, pre: str) -> None:
    """Keep the converter's hash lookup; only where it fails, answer with pre instead of raising."""
    recognise = text_model.get_vocab_base_pre

    def get_vocab_base_pre(self: Any, tokenizer: Any) -> str:
        try:
            return recognise(self, tokenizer)
        except NotImplementedError:
            print(f"pre-tokenizer not recognised by its hash; using '{pre}' (same split pattern)", file=sys.stderr)
            return pre

    text_model.get_vocab_base_pre = get_vocab_base_pre


# What transformers' own implementation of an architecture does without saying it in config.json (configs saved
# by transformers 5 drop these keys); llama.cpp falls back to another behaviour when they are missing.
IMPLIED = {"DeepseekV3ForCausalLM": {"scoring_func": "sigmoid"}}  # else llama.cpp routes DeepSeek-V3 with softmax


def _state_implied_hparams(model_base: Any) -> None:
    load = model_base.load_hparams

    def load_hparams(dir_model: Path, is_mistral_format: bool) -> dict[str, Any]:
        hparams = load(dir_model, is_mistral_format)
        for arch in hparams.get("architectures") or []:
            for key, value in IMPLIED.get(arch, {}).items():
                hparams.setdefault(key, value)
        return hparams

    model_base.load_hparams = staticmethod(load_hparams)


def quantize(source: Path, out: Path, ftype: int) -> None:
    """llama.cpp's own quantizer (llama_model_quantize) from source to out at ftype."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 0  # llama.cpp picks the hardware's thread count
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
    if status != 0:
        raise SystemExit(f"llama_model_quantize returned {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert")
    conv.add_argument("converter_dir", type=Path)
    conv.add_argument("model_dir", type=Path)
    conv.add_argument("out", type=Path)
    conv.add_argument("--pre", default=None)
    quant = sub.add_parser("quantize")
    quant.add_argument("source", type=Path)
    quant.add_argument("out", type=Path)
    quant.add_argument("ftype", type=int)
    args = parser.parse_args()
    if args.command == "convert":
        convert(args.converter_dir, args.model_dir, args.out, args.pre)
    else:
        quantize(args.source, args.out, args.ftype)


if __name__ == "__main__":
    main()
