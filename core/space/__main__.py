"""python -m core.space render|files|deploy: the Space's README header, upload list and deploy (dry run default)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import PlaygroundError
from core.space.card import header_is_current, render_header, write_readme
from core.space.config import ROOT, SPACE_CONFIG, load_space_config
from core.space.deploy import deploy, plan_deploy
from core.space.files import describe, describe_left_out, select_files


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors are printed as one readable line and exit with status 1."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _render(args: argparse.Namespace) -> int:
    cfg = load_space_config(args.config)
    readme = args.root / "README.md"
    if args.write:
        print("README.md header updated." if write_readme(cfg, readme) else "README.md header already current.")
        return 0
    if args.check:
        current = header_is_current(cfg, readme)
        print("README.md header is current." if current else "README.md header is stale: run render --write.")
        return 0 if current else 1
    print(render_header(cfg), end="")
    return 0


def _files(args: argparse.Namespace) -> int:
    selection = select_files(load_space_config(args.config), args.root)
    print(describe(selection.files))
    print(describe_left_out(selection.left_out))
    return 0


def _deploy(args: argparse.Namespace) -> int:
    plan = plan_deploy(load_space_config(args.config), args.root)
    print(plan.describe())
    if not args.yes:
        print("Dry run: nothing was sent. Add --yes (and a token: HF_TOKEN or `hf auth login`) to deploy.")
        return 0
    result = deploy(plan, args.root, args.token)
    print("\n".join(result.steps))
    print(f"Deployed: {result.url}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.space", description=__doc__)
    parser.add_argument("--config", type=Path, default=SPACE_CONFIG, help="spaces_config.yaml to use")
    parser.add_argument("--root", type=Path, default=ROOT, help="project folder to deploy")
    commands = parser.add_subparsers(required=True, metavar="render|files|deploy")
    render = commands.add_parser("render", help="print README.md's Space header rendered from the config")
    render.add_argument("--write", action="store_true", help="replace README.md's header (body left as is)")
    render.add_argument("--check", action="store_true", help="exit 1 when README.md's header is stale")
    render.set_defaults(run=_render)
    commands.add_parser("files", help="list what deploy would upload").set_defaults(run=_files)
    dep = commands.add_parser("deploy", help="show the deploy plan; with --yes, deploy")
    dep.add_argument("--yes", action="store_true", help="really create/update the Space")
    dep.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the saved login)")
    dep.set_defaults(run=_deploy)
    return parser


if __name__ == "__main__":
    sys.exit(main())
