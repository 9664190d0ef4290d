"""Export folders: every download a tab writes lives under one root, and old ones are swept as new ones come."""
import os
import time
from pathlib import Path

from ui.conversations import export_files
from ui.exports import export_folder, export_root


def test_a_new_export_sweeps_folders_older_than_the_limit_and_keeps_recent_ones():
    old, recent = export_folder("old-"), export_folder("recent-")
    (old / "quantization-comparison.json").write_text("{}")
    past = time.time() - 3600
    os.utime(old, (past, past))
    fresh = export_folder("new-", keep_s=600)
    assert not old.exists() and recent.exists() and fresh.exists() and fresh.parent == export_root()


def test_conversation_exports_are_written_under_the_swept_root():
    store = [{"id": "c1", "title": "Hello", "messages": [{"role": "user", "content": "Hi"}]}]
    json_path, _ = export_files(store, "c1")
    assert json_path is not None and export_root() in Path(json_path).parents
