"""README.md's YAML header (what a Space reads), rendered from spaces_config.yaml via huggingface_hub's SpaceCard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import SpaceCard, SpaceCardData
from huggingface_hub.repocard import REGEX_YAML_BLOCK

from core.space.config import TIERS, SpaceConfig

HEADER_ORDER = ["title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "python_version", "app_file",
                "license", "short_description", "suggested_hardware", "startup_duration_timeout",
                "preload_from_hub", "models", "tags"]


def header_fields(cfg: SpaceConfig) -> dict[str, Any]:
    """The Space metadata, in the Hub's key names, as plain YAML values."""
    s = cfg.space
    defaults = [getattr(cfg.models.for_tier(t), kind) for t in TIERS for kind in ("text", "vision")]
    return {
        "title": s.title, "emoji": s.emoji, "colorFrom": s.color_from, "colorTo": s.color_to,
        "sdk": "gradio", "sdk_version": s.sdk_version, "python_version": s.python_version, "app_file": s.app_file,
        "license": s.license, "short_description": s.short_description, "suggested_hardware": s.hardware,
        "startup_duration_timeout": s.startup_duration_timeout,
        "preload_from_hub": list(cfg.models.preload_from_hub) or None,
        "models": list(dict.fromkeys([*cfg.models.preload_from_hub, *defaults])),
        "tags": list(s.tags) or None,
    }


def render_header(cfg: SpaceConfig) -> str:
    """The `---`-fenced YAML block a Space reads at the top of README.md."""
    data = SpaceCardData(**header_fields(cfg))
    return f"---\n{data.to_yaml(original_order=HEADER_ORDER)}\n---\n"


def render_readme(cfg: SpaceConfig, readme: str) -> str:
    """readme with its header replaced (or added) by the rendered one; the body is left exactly as it is."""
    match = REGEX_YAML_BLOCK.search(readme)
    body = readme[match.end():] if match else readme
    return render_header(cfg) + body


def read_header(readme: str) -> dict[str, Any]:
    """The header of a README as huggingface_hub's SpaceCard parses it."""
    return SpaceCard(readme).data.to_dict()


def header_is_current(cfg: SpaceConfig, readme_path: Path) -> bool:
    """True when README.md's header says what spaces_config.yaml says."""
    return read_header(readme_path.read_text(encoding="utf-8")) == read_header(render_header(cfg))


def write_readme(cfg: SpaceConfig, readme_path: Path) -> bool:
    """Rewrite README.md's header from the config; True when the file changed."""
    old = readme_path.read_text(encoding="utf-8") if readme_path.exists() else ""
    new = render_readme(cfg, old)
    if new != old:
        readme_path.write_text(new, encoding="utf-8")
    return new != old
