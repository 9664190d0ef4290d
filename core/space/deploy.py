"""Deploy to a Space through huggingface_hub: create the repo, upload the files, set variables, request hardware."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2  # huggingface_hub 2.x transport: its connection errors are httpx2 errors
from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from core.errors import PlaygroundError
from core.space.card import header_is_current
from core.space.config import SpaceConfig
from core.space.files import LeftOut, UploadFile, describe_left_out, select_files

NOTHING_CHANGED = "Nothing was changed on the Hub."


class DeployError(PlaygroundError):
    """A deploy that cannot go ahead; the message says why and that nothing was changed."""


@dataclass(frozen=True)
class DeployPlan:
    repo_id: str
    hardware: str
    files: list[UploadFile]
    variables: dict[str, str]
    private: bool
    left_out: list[LeftOut] = field(default_factory=list)

    def describe(self) -> str:
        """What deploy --yes would do, in words."""
        size = sum(f.size_bytes for f in self.files) / 1e6
        return "\n".join([
            f"Space:     https://huggingface.co/spaces/{self.repo_id} ({'private' if self.private else 'public'}, "
            "gradio sdk)",
            f"Upload:    {len(self.files)} files, {size:.1f} MB (python -m core.space files lists them)",
            f"Variables: {', '.join(self.variables) or 'none'}",
            f"Hardware:  {self.hardware}",
            describe_left_out(self.left_out),
        ])


@dataclass
class DeployResult:
    url: str
    steps: list[str] = field(default_factory=list)  # what was done, in order


def plan_deploy(cfg: SpaceConfig, root: Path) -> DeployPlan:
    """Check everything that can be checked offline; DeployError (or ConfigError) before any upload."""
    if not header_is_current(cfg, root / "README.md"):
        raise DeployError("README.md's header does not match spaces_config.yaml: run "
                          f"`python -m core.space render --write` first. {NOTHING_CHANGED}")
    selection = select_files(cfg, root)
    return DeployPlan(cfg.space.repo_id, cfg.space.hardware, selection.files, dict(cfg.variables),
                      cfg.space.private, selection.left_out)


def deploy(plan: DeployPlan, root: Path, token: str | None = None,
           api_factory: Callable[..., Any] = HfApi) -> DeployResult:
    """Create or update the Space as planned; DeployError without a token or without the Hub."""
    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise DeployError(f"No Hugging Face token: set HF_TOKEN or run `hf auth login`. {NOTHING_CHANGED}")
    api = api_factory(token=token)
    try:
        user = api.whoami()  # fails fast (no network, offline mode, bad token) before anything is created
    except (OfflineModeIsEnabled, httpx2.HTTPError, HfHubHTTPError, OSError) as exc:
        raise DeployError(f"Cannot reach the Hugging Face Hub or the token was refused ({_first_line(exc)}). "
                          f"{NOTHING_CHANGED}") from exc
    try:
        return _push(api, plan, root, user.get("name", "?"))
    except (httpx2.HTTPError, HfHubHTTPError, OSError) as exc:
        raise DeployError(f"Deploy to {plan.repo_id} failed part-way: {_first_line(exc)}. Run it again: "
                          "every step is idempotent.") from exc


def _push(api: Any, plan: DeployPlan, root: Path, user: str) -> DeployResult:
    repo = api.create_repo(plan.repo_id, repo_type="space", space_sdk="gradio", space_hardware=plan.hardware,
                           private=plan.private, exist_ok=True)
    result = DeployResult(str(repo), [f"repo ready as {user}: {repo}"])
    api.upload_folder(repo_id=plan.repo_id, repo_type="space", folder_path=root,
                      allow_patterns=[f.path for f in plan.files], commit_message="Deploy DeepSeek Playground")
    result.steps.append(f"uploaded {len(plan.files)} files")
    for key, value in plan.variables.items():
        api.add_space_variable(plan.repo_id, key, value)
    result.steps.append(f"set {len(plan.variables)} variables")
    api.request_space_hardware(plan.repo_id, plan.hardware)  # create_repo's hardware only applies to a new Space
    result.steps.append(f"requested {plan.hardware}")
    return result


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
