"""The upload list: what the Space needs, nothing from caches or venvs, every file under the size limit."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest

from core.config import ConfigError
from core.space import __main__ as cli
from core.space.config import ROOT, load_space_config
from core.space.files import REQUIRED, select_files, upload_files


def make_project(root, extra: dict[str, int]) -> None:
    for path, size in {"app.py": 10, "core/a.py": 10, "ui/b.py": 10, "assets/m/w.bin": 10, "requirements.txt": 5,
                       "README.md": 5, "spaces_config.yaml": 5, **extra}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"x" * size)


def test_project_upload_list_has_the_app_and_nothing_from_caches_venvs_or_tests():
    cfg = load_space_config()
    paths = [f.path for f in upload_files(cfg, ROOT)]
    for required in REQUIRED:
        assert any(p == required or (required.endswith("/") and p.startswith(required)) for p in paths), required
    assert "assets/models/deepseek-v3-tiny/model.safetensors" in paths
    assert not [p for p in paths if p.startswith((".venv", "tests/", ".git/")) or "__pycache__" in p
                or p.endswith(".pyc") or "/.cache/" in p]
    assert all(f.size_bytes <= cfg.upload.max_file_bytes for f in upload_files(cfg, ROOT))


def test_outside_git_the_walk_skips_venvs_and_caches(tmp_path):
    make_project(tmp_path, {".venv/lib/x.py": 5, "core/__pycache__/a.pyc": 5, ".cache/hf/blob": 5, "tests/t.py": 5})
    paths = [f.path for f in upload_files(load_space_config(), tmp_path)]
    assert paths == ["README.md", "app.py", "assets/m/w.bin", "core/a.py", "requirements.txt", "spaces_config.yaml",
                     "ui/b.py"]


def test_a_file_over_the_size_limit_is_refused_by_name(tmp_path):
    make_project(tmp_path, {"assets/big.safetensors": 2_000})
    cfg = load_space_config()
    cfg = replace(cfg, upload=replace(cfg.upload, max_file_bytes=1_000))
    with pytest.raises(ConfigError, match="assets/big.safetensors"):
        upload_files(cfg, tmp_path)


def test_excluding_a_required_folder_is_refused(tmp_path):
    make_project(tmp_path, {})
    cfg = load_space_config()
    cfg = replace(cfg, upload=replace(cfg.upload, exclude=["ui/*"]))
    with pytest.raises(ConfigError, match="ui/"):
        upload_files(cfg, tmp_path)


SECRETS = [".env", ".env.production", "config/prod.env", "server.pem", "deploy.key", "hf_token", "token.txt",
           "assets/.hf_token", "credentials.json", "core/my-secrets.yaml", "ui/api_key.txt", ".netrc", "id_ed25519"]
HIDDEN = [".vscode/settings.json", "assets/.DS_Store", ".ci/run"]
MODEL_FILES = ["assets/m/tokenizer.json", "assets/m/tokenizer_config.json", "assets/m/special_tokens_map.json"]


def test_planted_secrets_and_hidden_files_are_left_out_with_a_reason(tmp_path, capsys):
    make_project(tmp_path, {p: 5 for p in [*SECRETS, *HIDDEN, *MODEL_FILES]})
    selection = select_files(load_space_config(), tmp_path)
    paths = [f.path for f in selection.files]
    assert not set(SECRETS + HIDDEN) & set(paths)
    assert set(MODEL_FILES) <= set(paths)  # tokenizer files are not "token" files
    reasons = {item.path: item.reason for item in selection.left_out}
    assert all(reasons[p].startswith("secret") for p in SECRETS), reasons
    assert reasons[".vscode/settings.json"].startswith("hidden") and reasons["assets/.DS_Store"].startswith("hidden")
    assert cli.main(["--root", str(tmp_path), "files"]) == 0
    out = capsys.readouterr().out
    assert all(f"{p}  (secret" in out for p in SECRETS) and "assets/.DS_Store  (hidden" in out


def test_a_secret_is_left_out_even_when_hidden_files_are_allowed(tmp_path):
    make_project(tmp_path, {".env": 5, ".well-known/security.txt": 5})
    cfg = load_space_config()
    cfg = replace(cfg, upload=replace(cfg.upload, allow_hidden=[".*", ".well-known/*"]))
    paths = [f.path for f in select_files(cfg, tmp_path).files]
    assert ".well-known/security.txt" in paths and ".env" not in paths


def test_the_deploy_plan_lists_what_it_left_out_and_why(tmp_path):
    make_project(tmp_path, {"server.pem": 5, "tests/t.py": 5})
    plan = plan_deploy_offline(tmp_path)
    assert "server.pem  (secret: name matches *.pem)" in plan.describe()
    assert "1 file  (upload.exclude: tests/*)" in plan.describe()


@pytest.mark.parametrize("path", SECRETS)
def test_gitignore_keeps_planted_secrets_out_of_the_repo(path):
    out = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False)
    assert out.returncode == 0, f"{path} is not ignored by .gitignore"


def test_gitignore_keeps_tokenizer_files(tmp_path):
    out = subprocess.run(["git", "check-ignore", "--no-index", *MODEL_FILES], cwd=ROOT, check=False,
                         capture_output=True, text=True)
    assert out.stdout == ""


def plan_deploy_offline(root):
    from core.space.card import write_readme
    from core.space.deploy import plan_deploy

    cfg = load_space_config()
    write_readme(cfg, root / "README.md")
    return plan_deploy(cfg, root)
