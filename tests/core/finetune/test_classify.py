import errno
import json
from pathlib import Path

import pytest

from core.finetune.classify import classify_texts
from core.finetune.saving import COMPLETE_MARKER, SaveError, read_manifest, save_atomically
from tests.core.finetune.conftest import CLASSIFY, files_in, headlines


def test_fine_tune_beats_the_majority_baseline_on_held_out_headlines(classifier):
    assert classifier.eval_examples == 80 and classifier.baseline_accuracy < 0.45
    assert classifier.accuracy >= classifier.baseline_accuracy + 0.2
    assert classifier.macro_f1 > 0.6
    assert [row["epoch"] for row in classifier.history] == [1.0, 2.0]
    assert classifier.freeze["frozen_blocks"] == 3 and classifier.world_size == 1


def test_saved_classifier_has_label_map_manifest_and_reloads(classifier):
    folder = Path(classifier.out_dir)
    assert {"model.safetensors", "config.json", "label_map.json", COMPLETE_MARKER} <= files_in(folder)
    assert json.loads((folder / "label_map.json").read_text())["id2label"] == {"0": "negative", "1": "neutral",
                                                                               "2": "positive"}
    assert read_manifest(folder)["metrics"]["accuracy"] == classifier.accuracy
    assert not any(p.name.startswith(".") for p in folder.parent.iterdir())  # no work or partial folders left
    _train, held = headlines().subset(list(range(400))).split(0.2, CLASSIFY.seed)
    predictions = classify_texts(folder, list(held.texts))
    hits = sum(p.label == held.label_names[y] for p, y in zip(predictions, held.labels, strict=True))
    assert hits / len(held) == pytest.approx(classifier.accuracy)  # the reloaded model is the evaluated one


def test_disk_full_while_saving_leaves_no_model_and_keeps_the_old_one(tmp_path, deepseek):
    out = tmp_path / "model"
    save_atomically(out, lambda folder: (folder / "weights.bin").write_bytes(b"old"), {"task": "classify"})

    def fill_disk(folder):
        deepseek.model.save_pretrained(folder)  # a real partial write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(SaveError, match="disk is full.*nothing was written"):
        save_atomically(out, fill_disk, {"task": "classify"})
    assert files_in(tmp_path) == {"model"} and (out / "weights.bin").read_bytes() == b"old"


def test_a_folder_without_manifest_is_not_a_finished_model(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SaveError, match="not a finished fine-tuned model"):
        read_manifest(tmp_path)
