"""Two README promises: files over 200,000 rows are refused by default, and Stop still evaluates and saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.finetune.__main__ import parser
from core.finetune.classify import classify_texts, train_classifier
from core.finetune.data import DataError, DataLimits, load_labeled, read_records
from core.finetune.saving import read_manifest
from core.finetune.training import Progress, TrainSettings
from tests.core.finetune.conftest import BASE, files_in, headlines


def rows_file(folder: Path, rows: int) -> Path:
    path = folder / f"rows-{rows}.csv"
    path.write_text("text,label\n" + "up,a\ndown,b\n" * (rows // 2) + ("up,a\n" if rows % 2 else ""), encoding="utf-8")
    return path


def test_files_of_200000_rows_load_and_one_more_row_is_refused_by_default(tmp_path):
    assert len(load_labeled(rows_file(tmp_path, 200_000), "text", "label")) == 200_000
    with pytest.raises(DataError, match="more than 200,000 rows"):
        load_labeled(rows_file(tmp_path, 200_001), "text", "label")


def test_the_command_line_and_the_app_use_the_same_200000_row_limit(tmp_path):
    args = parser().parse_args(["classify", "--data", "d.csv", "--text-col", "t", "--label-col", "l", "--out", "o"])
    assert args.max_rows == DataLimits().max_rows == 200_000
    small = DataLimits(max_rows=3)  # the limit is the argument's, not a constant
    with pytest.raises(DataError, match="more than 3 rows"):
        list(read_records(rows_file(tmp_path, 4), small))


def test_stop_ends_training_early_and_the_model_so_far_is_still_evaluated_and_saved(tmp_path):
    data = headlines().subset(list(range(200)))
    progress = Progress()
    progress.stop.set()  # Stop pressed before the first step ends: training ends after one step
    out = tmp_path / "stopped"
    settings = TrainSettings(epochs=3, batch_size=16, max_length=32, early_stopping_patience=0, seed=0)
    result = train_classifier(data, BASE, out, settings, progress=progress)
    assert result.stopped and progress.step == 1 and 0 < result.epochs_run < 1
    assert result.eval_examples == 40 and result.eval_loss > 0  # evaluated on the held-out rows after the Stop
    assert read_manifest(out)["metrics"]["stopped"] is True and "model.safetensors" in files_in(out)
    _train, held = data.split(0.2, 0)
    predictions = classify_texts(out, list(held.texts))
    hits = sum(p.label == held.label_names[y] for p, y in zip(predictions, held.labels, strict=True))
    assert hits / len(held) == pytest.approx(result.accuracy)  # the saved model is the evaluated one
