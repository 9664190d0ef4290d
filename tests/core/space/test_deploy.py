"""Deploy: the real huggingface_hub calls, in order, against a recording stand-in for the Hub; never without a token."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from huggingface_hub import HfApi, SpaceHardware

from core.space import __main__ as cli
from core.space.config import ROOT, load_space_config
from core.space.deploy import DeployError, deploy, plan_deploy


class RecordingHub:
    """Stands in for HfApi where no Hub exists: checks each call against HfApi's real signature, records it."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        real = getattr(HfApi, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            bound = inspect.signature(real).bind(None, *args, **kwargs)  # TypeError if we call it wrongly
            arguments = dict(list(bound.arguments.items())[1:])
            self.calls.append((name, arguments))
            return {"name": "tester"} if name == "whoami" else f"https://huggingface.co/spaces/{arguments['repo_id']}"

        return call


@pytest.fixture
def plan():
    return plan_deploy(load_space_config(), ROOT)


def test_deploy_creates_uploads_sets_variables_and_requests_hardware(plan):
    hubs: list[RecordingHub] = []
    result = deploy(plan, ROOT, token="hf_test", api_factory=lambda token: hubs.append(RecordingHub(token)) or hubs[0])
    calls = hubs[0].calls
    assert [name for name, _ in calls] == ["whoami", "create_repo", "upload_folder", "add_space_variable",
                                           "add_space_variable", "request_space_hardware"]
    create, upload = calls[1][1], calls[2][1]
    assert (create["repo_id"], create["repo_type"], create["space_sdk"]) == (plan.repo_id, "space", "gradio")
    assert SpaceHardware(create["space_hardware"]) == SpaceHardware.ZERO_A10G
    assert upload["allow_patterns"] == [f.path for f in plan.files] and upload["repo_type"] == "space"
    assert {c[1]["key"]: c[1]["value"] for c in calls[3:5]} == plan.variables
    assert calls[5][1]["hardware"] == plan.hardware and hubs[0].token == "hf_test"
    assert result.url.endswith(plan.repo_id)


def test_deploy_without_a_token_says_so_and_calls_nothing(plan, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("core.space.deploy.get_token", lambda: None)
    with pytest.raises(DeployError, match="No Hugging Face token.*Nothing was changed"):
        deploy(plan, ROOT, api_factory=lambda token: pytest.fail("the Hub must not be contacted"))


def test_deploy_without_the_hub_says_so_through_the_real_client(plan):
    # HF_HUB_OFFLINE=1 (tests/conftest.py): the real HfApi refuses before any network access
    with pytest.raises(DeployError, match="Cannot reach the Hugging Face Hub.*Nothing was changed"):
        deploy(plan, ROOT, token="hf_test")


def test_deploy_refuses_a_stale_readme_header(tmp_path):
    (tmp_path / "README.md").write_text("# No header yet\n", encoding="utf-8")
    with pytest.raises(DeployError, match="render --write"):
        plan_deploy(load_space_config(), tmp_path)


def test_cli_deploy_is_a_dry_run_unless_yes(monkeypatch, capsys):
    monkeypatch.setattr(cli, "deploy", lambda *a, **k: pytest.fail("a dry run must not deploy"))
    assert cli.main(["deploy"]) == 0
    assert "Dry run: nothing was sent" in capsys.readouterr().out


def test_cli_reports_errors_as_one_line_and_status_1(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("space: {colour: red}\n", encoding="utf-8")
    assert cli.main(["--config", str(tmp_path / "bad.yaml"), "render"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "space.colour" in err and "Traceback" not in err
