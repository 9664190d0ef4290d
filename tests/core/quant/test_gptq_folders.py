"""GPTQ checkpoints on disk: a GPTQ folder is loaded as is; the cache is published whole or not at all."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core.models.catalog import CatalogEntry, default_catalog
from core.models.hardware import Precision
from core.quant import gptq
from core.quant.backends import kernel_of
from core.quant.loaders import load_gptq
from tests.conftest import DENSE_MODEL

IDS = torch.tensor([[5, 17, 300, 42, 9, 1200, 77, 8, 640, 3, 2500, 19]])


def test_a_folder_holding_a_gptq_checkpoint_is_loaded_as_is(gptq4, hardware, tmp_path, monkeypatch):
    folder = tmp_path / "my-gptq-model"
    shutil.copytree(gptq.checkpoint_dir(gptq4.entry, 4), folder)
    entry = CatalogEntry("local/my-gptq-model", gptq4.entry.family, "text", str(folder), "a GPTQ folder", 4096)
    monkeypatch.setattr(gptq, "quantize_to_cache", lambda *a, **k: pytest.fail("re-quantized a GPTQ folder"))
    loaded = load_gptq(entry, Precision.GPTQ_INT4, hardware, kernel_of(Precision.GPTQ_INT4, hardware.device))
    assert loaded.backend == "GPTQModel" and loaded.entry.source == str(folder)
    with torch.inference_mode():
        assert torch.equal(loaded.model(IDS).logits, gptq4.model(IDS).logits)  # the same quantized weights


def test_gptq_checkpoints_are_recognised_in_gptqmodel_and_autogptq_layouts(gptq4, tmp_path):
    assert gptq.is_gptq_checkpoint(str(gptq.checkpoint_dir(gptq4.entry, 4)))
    auto = tmp_path / "autogptq"
    auto.mkdir()
    (auto / "quantize_config.json").write_text(json.dumps({"bits": 4, "group_size": 128}))  # AutoGPTQ's own file
    hf = tmp_path / "transformers"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "GPTQ", "bits": 4}}))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    assert gptq.is_gptq_checkpoint(str(auto)) and gptq.is_gptq_checkpoint(str(hf))
    assert not gptq.is_gptq_checkpoint(str(plain)) and not gptq.is_gptq_checkpoint(str(tmp_path / "missing"))
    assert not gptq.is_gptq_checkpoint(default_catalog().get(DENSE_MODEL).source)


class Calibration:
    """GPTQModel's calibrate-and-save, cut short where a crash can happen: a real calibration takes ~30 s here."""

    def __init__(self, fail_in_save: bool) -> None:
        self.fail_in_save = fail_in_save

    def quantize(self, *args, **kwargs) -> None:
        pass

    def save(self, folder: str) -> None:
        (Path(folder) / "config.json").write_text("{}")
        if self.fail_in_save:
            raise KeyboardInterrupt  # Ctrl-C while the weights are being written
        (Path(folder) / "model.safetensors").write_bytes(b"new")


def interrupted_dir(entry: CatalogEntry, monkeypatch, fail_in_save: bool) -> Path:
    import gptqmodel

    monkeypatch.setattr(gptqmodel.GPTQModel, "load", lambda *a, **k: Calibration(fail_in_save))
    return gptq.checkpoint_dir(entry, 8)


def test_an_interruption_while_saving_leaves_no_folder_to_reuse(hardware, monkeypatch):
    entry = replace(default_catalog().get(DENSE_MODEL), model_id="bundled/save-interrupted")
    target = interrupted_dir(entry, monkeypatch, fail_in_save=True)
    with pytest.raises(KeyboardInterrupt):
        gptq.quantize_to_cache(entry, 8, hardware.device)
    assert not target.exists() and not list(target.parent.glob(f".{target.name}-*"))


def test_a_stale_half_written_folder_is_replaced_by_the_complete_one(hardware, monkeypatch):
    entry = replace(default_catalog().get(DENSE_MODEL), model_id="bundled/stale-folder")
    target = interrupted_dir(entry, monkeypatch, fail_in_save=False)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "half-written.bin").write_bytes(b"old")  # left by a crash before the completion mark
    assert gptq.quantize_to_cache(entry, 8, hardware.device) == target
    assert gptq.is_complete(target) and (target / "model.safetensors").read_bytes() == b"new"
    assert not (target / "half-written.bin").exists() and not list(target.parent.glob(f".{target.name}-*"))
