"""Fine-tuning on the example headlines: held-out accuracy vs the majority baseline, and the speed-up of freezing.

Run: .venv/bin/python -m bench.finetune [--rows 600] [--epochs 2]
Trains the classifier twice in this one run (80% of blocks frozen, then none frozen) and prints the accuracy
over the majority-class baseline and the train-time ratio of the two.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.finetune.classify import train_classifier  # noqa: E402
from core.finetune.data import load_labeled  # noqa: E402
from core.finetune.training import TrainSettings  # noqa: E402
from core.models.catalog import default_catalog  # noqa: E402
from core.paths import ASSETS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="bundled/deepseek-v3-tiny")
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--epochs", type=float, default=2)
    args = parser.parse_args()
    data = load_labeled(ASSETS / "data" / "finance_headlines.csv", "headline", "sentiment")
    data = data.subset(list(range(min(args.rows, len(data)))))
    source = default_catalog().get(args.model).source
    settings = TrainSettings(epochs=args.epochs, learning_rate=3e-3, max_length=32, early_stopping_patience=0)
    runs = {}
    for frozen in (0.8, 0.0):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            runs[frozen] = (train_classifier(data, source, f"{folder}/clf", settings, frozen),
                            time.perf_counter() - start)
    for frozen, (result, seconds) in runs.items():
        print(f"frozen {frozen:.0%}: {result.summary()} · {seconds:.1f} s · {result.freeze['trainable_params']:,} "
              f"trainable params")
    tuned, _ = runs[0.8]
    print(f"accuracy / majority baseline (80% frozen): {tuned.accuracy / tuned.baseline_accuracy:.2f}x")
    print(f"train time, none frozen / 80% frozen: {runs[0.0][1] / runs[0.8][1]:.2f}x")


if __name__ == "__main__":
    main()
