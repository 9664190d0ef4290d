import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from core.finetune.data import LabeledTexts, load_labeled
from tests.core.finetune.conftest import HEADLINES, files_in

ROOT = Path(__file__).resolve().parents[3]


def held_out_accuracy(folder: Path, held: LabeledTexts, max_length: int) -> float:
    """The saved model's accuracy on every held-out row, computed here in one process."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = tokenizer(list(held.texts), return_tensors="pt", padding=True, truncation=True, max_length=max_length)
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1)
    return float((predicted == torch.tensor(held.labels)).float().mean())


def test_two_process_ddp_on_cpu_trains_and_writes_the_same_metrics(tmp_path, classifier):
    data = tmp_path / "small.csv"
    data.write_text("".join(HEADLINES.read_text(encoding="utf-8").splitlines(keepends=True)[:161]), encoding="utf-8")
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "core.finetune", "classify", "--data", str(data), "--text-col", "headline",
               "--label-col", "sentiment", "--out", str(out), "--epochs", "1", "--max-length", "32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = json.loads((out / "finetune.json").read_text())["metrics"]
    assert metrics.keys() == asdict(classifier).keys()  # same format as a single-process run
    assert metrics["world_size"] == 2 and metrics["epochs_run"] == 1.0
    assert [row["epoch"] for row in metrics["history"]] == [1.0]
    train, held = load_labeled(data, "headline", "sentiment").split(0.2, 0)  # the CLI's defaults
    assert (metrics["train_examples"], metrics["eval_examples"]) == (len(train), len(held))
    assert metrics["baseline_accuracy"] == held.majority_accuracy()
    assert metrics["accuracy"] == pytest.approx(held_out_accuracy(out, held, max_length=32))  # all ranks' rows
    assert {"model.safetensors", "label_map.json"} <= files_in(out)
    assert files_in(tmp_path) == {"small.csv", "ddp"}  # rank 0 saved once, no partial or work folders
