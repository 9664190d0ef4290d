"""No lost work: unique run folders never replaced, a retention rule, interrupted runs kept apart and marked."""

from __future__ import annotations

import json
import os
import time

from core.finetune.jobs import JobBook, JobRequest
from core.finetune.runs import INTERRUPTED, prune_runs, reserve_run_dir
from core.finetune.saving import COMPLETE_MARKER
from core.finetune.training import TrainSettings
from tests.conftest import TEXT_MODEL
from tests.core.finetune.conftest import BASE, INSTRUCTIONS

QUICK = TrainSettings(epochs=1, learning_rate=5e-3, batch_size=16, max_length=32)


def lora_request(rows: int = 32, settings: TrainSettings = QUICK) -> JobRequest:
    return JobRequest("lora", str(INSTRUCTIONS), BASE, TEXT_MODEL, settings, max_rows=rows)


def fake_run(root, name: str, size: int, age_s: float):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"x" * size)
    (folder / COMPLETE_MARKER).write_text("{}")
    stamp = time.time() - age_s
    os.utime(folder / COMPLETE_MARKER, (stamp, stamp))
    return folder


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    folders = [reserve_run_dir(tmp_path) for _ in range(8)]
    assert len(set(folders)) == 8 and all(f.is_dir() for f in folders)


def test_back_to_back_jobs_never_replace_each_others_model(tmp_path):
    book = JobBook(root=tmp_path)
    first = book.start("a", lora_request())
    assert first.wait(300) and first.result is not None, first.error
    second = book.start("b", lora_request())
    assert second.wait(300) and second.result is not None, second.error
    assert first.result.out_dir != second.result.out_dir
    for result in (first.result, second.result):
        assert json.loads((tmp_path / result.out_dir / COMPLETE_MARKER).read_text())["task"] == "lora"


def test_retention_keeps_the_newest_runs_and_a_disk_budget(tmp_path):
    old, mid, new = (fake_run(tmp_path, f"run-{i}", 1000, age) for i, age in enumerate((300, 200, 100)))
    unfinished = tmp_path / "run-running"
    unfinished.mkdir()
    assert prune_runs(tmp_path, keep=2, max_total_bytes=None) == [old]
    assert prune_runs(tmp_path, keep=10, max_total_bytes=1500) == [mid]
    assert new.exists() and unfinished.exists()  # a run without its manifest is never pruned


def test_a_job_book_prunes_old_runs_before_a_new_one(tmp_path):
    for i in range(3):
        fake_run(tmp_path, f"run-old-{i}", 10, 1000 - i)
    book = JobBook(root=tmp_path, keep_runs=2)
    job = book.start("a", lora_request())
    assert job.wait(300) and job.result is not None, job.error
    left = sorted(p.name for p in tmp_path.glob("run-*") if (p / COMPLETE_MARKER).exists())
    assert len(left) == 2 and "run-old-2" in left and os.path.basename(job.result.out_dir) in left


def test_an_interrupted_run_is_kept_apart_and_marked(tmp_path):
    book = JobBook(root=tmp_path)
    job = book.start("gone", lora_request(rows=200, settings=TrainSettings(epochs=50, batch_size=4, max_length=32)))
    deadline = time.monotonic() + 120
    while job.progress.step < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert book.running() == [job]
    job.interrupt()
    assert job.wait(300) and job.result is not None, job.error
    folder = tmp_path / INTERRUPTED / os.path.basename(job.result.out_dir)
    assert str(folder) == job.result.out_dir and job.result.stopped
    assert "disconnected" in json.loads((folder / COMPLETE_MARKER).read_text())["interrupted"]
    assert not list(tmp_path.glob("run-*")) and book.running() == []
