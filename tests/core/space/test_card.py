"""README.md's Space header: rendered from spaces_config.yaml, parsed back by huggingface_hub's SpaceCard."""

from __future__ import annotations

from huggingface_hub import SpaceCard

from core.space.card import header_is_current, read_header, render_header, render_readme
from core.space.config import ROOT, load_space_config


def test_rendered_header_round_trips_through_spacecard_and_matches_the_config():
    cfg = load_space_config()
    data = SpaceCard(render_header(cfg) + "\n# Body\n").data
    assert (data.title, data.sdk, data.sdk_version, data.python_version, data.app_file, data.license) == (
        cfg.space.title, "gradio", cfg.space.sdk_version, cfg.space.python_version, cfg.space.app_file,
        cfg.space.license)
    assert (data.emoji, data.colorFrom, data.colorTo) == (cfg.space.emoji, cfg.space.color_from, cfg.space.color_to)
    assert data.short_description == cfg.space.short_description
    assert data.suggested_hardware == cfg.space.hardware
    assert data.preload_from_hub == cfg.models.preload_from_hub
    assert cfg.models.for_tier("zero_gpu").text in data.models
    assert data.tags == cfg.space.tags
    assert SpaceCard(str(SpaceCard(render_header(cfg)))).data.to_dict() == data.to_dict()


def test_render_replaces_an_old_header_and_keeps_the_body_byte_for_byte():
    cfg = load_space_config()
    body = "\n# Title\n\nText with --- dashes\r\nand `code`.\n"
    for readme in ("---\ntitle: old\nsdk: static\n---" + body, body.lstrip("\n")):
        rendered = render_readme(cfg, readme)
        assert rendered.endswith(body.lstrip("\n") if not readme.startswith("---") else body)
        assert read_header(rendered) == read_header(render_header(cfg))


def test_committed_readme_header_is_current_with_spaces_config():
    assert header_is_current(load_space_config(), ROOT / "README.md"), "run: python -m core.space render --write"
