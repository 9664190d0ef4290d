"""Score a DeepSeek-VL checkpoint on issue 15's goals, as tests/core/generation/test_vision_heldout.py does.

    python scripts/vision_goals.py [DIR]

Prints colour and shape accuracy on the test's 100 independent drawings (seed 5000) and on 200 others
(seed 20000, vision_probe's), and exact match on the training generator's held-out scenes (seed 13) for short
and detailed captions. Greedy captions through scripts/vision_eval (the same chat template and processor).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transformers import DeepseekVLForConditionalGeneration, DeepseekVLProcessor  # noqa: E402

from scripts.shapes import CAPTION_PROMPTS, draw_scene, parse_attributes  # noqa: E402
from scripts.vision_eval import _user, generate_replies, heldout_scenes, score_images  # noqa: E402
from tests.independent_drawings import drawings  # noqa: E402


def goals(folder: Path) -> dict[str, float]:
    """The four goal figures (and a second independent set) for the checkpoint in `folder`."""
    model = DeepseekVLForConditionalGeneration.from_pretrained(folder).eval()
    processor = DeepseekVLProcessor.from_pretrained(folder)
    report: dict[str, float] = {}
    for name, seed, n in (("independent", 5000, 100), ("independent_20000", 20000, 200)):
        held = drawings(n, seed)
        scores = score_images(model, processor, [d.image for d in held],
                              [{"colour": d.colour, "shape": d.shape} for d in held])
        report.update({f"{name}_{k}": v for k, v in scores.items()})
    scenes = heldout_scenes(100, 13)
    images = [draw_scene(scene, side, draw_seed) for scene, draw_seed, side in scenes]
    for style in ("short", "detailed"):
        chat = [[_user(CAPTION_PROMPTS[style][0], with_image=True)]]
        hits = 0
        for start in range(0, len(images), 25):
            replies = generate_replies(model, processor, images[start:start + 25], chat * len(images[start:start + 25]))
            for text, (scene, _, _) in zip(replies, scenes[start:start + 25], strict=True):
                got, truth = parse_attributes(text), scene.attributes(style)
                hits += all(got[a] == truth[a] for a in truth)
        report[f"heldout_{style}_exact"] = hits / len(images)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", default=ROOT / "assets/models/deepseek-vl-tiny")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.process_time()
    report = goals(args.folder)
    print(json.dumps({**report, "cpu_seconds": round(time.process_time() - start, 1)}, indent=2))


if __name__ == "__main__":
    main()
