"""app.py's import order: without ZeroGPU no `spaces` is needed; with it, `spaces` comes before torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from core.space.config import ROOT

BUILD = "from app import build_app; from core.models.catalog import default_catalog; " \
        "from core.config import AppConfig; from core.models.hardware import detect_hardware; " \
        "from core.serving.registry import ModelRegistry; " \
        "build_app(ModelRegistry(default_catalog(), detect_hardware()), AppConfig())"

FAKE_SPACES = textwrap.dedent('''
    """Stands in for the `spaces` package on a ZeroGPU Space (which needs a Space): records what the app does."""
    import json, os, sys
    LOG = os.environ["FAKE_SPACES_LOG"]
    def _note(**kw):
        with open(LOG, "a") as f:
            f.write(json.dumps(kw) + "\\n")
    _note(event="import", torch_already_imported="torch" in sys.modules)
    def GPU(task=None, *, duration=None, size=None):
        _note(event="gpu", task=getattr(task, "__name__", "?"), size=size, dynamic=callable(duration))
        return task
''')


def start_python(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("SPACES_ZERO_GPU", "SPACE_ID")}
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_app_builds_without_the_spaces_package_when_zerogpu_is_off():
    """A fresh process: in this one, other tests have already imported app.py, ui/ and core/ (and maybe spaces)."""
    block = "import sys; sys.modules['spaces'] = None; "  # any `import spaces` now raises ImportError
    proc = start_python(block + BUILD + "; print('built', type(sys.modules['spaces']).__name__)", {})
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert out.strip().endswith("built NoneType")


def test_on_zerogpu_app_imports_spaces_before_torch_and_wraps_chat_in_spaces_gpu(tmp_path):
    """A fresh process: only there can `spaces` come before torch."""
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "__init__.py").write_text(FAKE_SPACES, encoding="utf-8")
    log = tmp_path / "log.jsonl"
    proc = start_python(BUILD, {"SPACES_ZERO_GPU": "true", "FAKE_SPACES_LOG": str(log), "PYTHONPATH": str(tmp_path)})
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events[0] == {"event": "import", "torch_already_imported": False}
    assert {"event": "gpu", "task": "_run", "size": "large", "dynamic": True} in events


def test_a_config_error_at_start_up_is_one_line_and_exit_status_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  prot: 1\n")
    for argv, env in (([f"--config={bad}"], {}), ([], {"PLAYGROUND_AUTH": "nopassword"})):
        proc = subprocess.run([sys.executable, "app.py", *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env={**os.environ, **env})
        assert proc.returncode == 2, proc.stderr[-2000:]
        errors = [line for line in proc.stderr.splitlines() if line.startswith("config error:")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_gptq_calibration_is_off_by_default_on_a_space_and_on_locally(registry, monkeypatch):
    from dataclasses import replace

    from app import build_service
    from core.config import AppConfig

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert build_service(registry, AppConfig()).allow_calibration
    monkeypatch.setenv("SPACE_ID", "someone/playground")
    assert not build_service(registry, AppConfig()).allow_calibration
    cfg = AppConfig()
    assert build_service(registry, replace(cfg, models=replace(cfg.models, allow_calibration=True))).allow_calibration
