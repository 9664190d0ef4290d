from pathlib import Path

import pytest

from core.config import AppConfig, ConfigError, load_config


def test_defaults_without_a_file():
    cfg = load_config(None)
    assert cfg == AppConfig()
    assert cfg.server.port == 7860


def test_yaml_overrides_nested_values(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  port: 9000\nlimits:\n  stream_timeout_s: 5\nmodels:\n  memory_budget_bytes: 1000\n")
    cfg = load_config(path)
    assert cfg.server.port == 9000
    assert cfg.limits.stream_timeout_s == 5.0
    assert cfg.models.memory_budget_bytes == 1000


def test_unknown_key_is_an_error_naming_it(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  prot: 9000\n")
    with pytest.raises(ConfigError, match="server.prot"):
        load_config(path)


def test_wrong_type_is_an_error_naming_the_key(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  port: eighty\n")
    with pytest.raises(ConfigError, match="server.port"):
        load_config(path)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        AppConfig().server.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(("body", "key"), [("server:\n  log_level: LOUD\n", "server.log_level"),
                                           ("limits:\n  max_upload_bytes: 0\n", "limits.max_upload_bytes"),
                                           ("finetune:\n  keep_runs: -1\n", "finetune.keep_runs"),
                                           ("server:\n  max_in_flight: 36\n", "server.max_in_flight"),
                                           ("server:\n  malloc_trim_s: -1\n", "server.malloc_trim_s"),
                                           ("server:\n  malloc_arena_max: -2\n", "server.malloc_arena_max")])
def test_bad_values_are_errors_naming_the_key(tmp_path: Path, body, key):
    path = tmp_path / "c.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=key):
        load_config(path)
