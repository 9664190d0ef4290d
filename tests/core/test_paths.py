from pathlib import Path

from core.paths import ASSETS, cache_root


def test_cache_root_uses_the_variable_and_falls_back_when_it_is_empty(tmp_path):
    assert cache_root({"PLAYGROUND_CACHE": str(tmp_path)}) == tmp_path
    default = Path.home() / ".cache" / "deepseek-playground"
    assert cache_root({"PLAYGROUND_CACHE": ""}) == default  # an empty variable must not mean the working directory
    assert cache_root({}) == default


def test_assets_root_holds_the_bundled_checkpoints():
    assert (ASSETS / "models" / "deepseek-v3-tiny" / "config.json").exists()
