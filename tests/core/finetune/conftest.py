"""One seeded classifier and one LoRA adapter trained on the example data, shared by the fine-tune tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.finetune.classify import ClassifyResult, train_classifier
from core.finetune.data import load_chats, load_labeled
from core.finetune.lora import LoraResult, train_lora
from core.finetune.training import TrainSettings
from core.models.catalog import default_catalog
from core.paths import ASSETS
from tests.conftest import TEXT_MODEL

HEADLINES = ASSETS / "data" / "finance_headlines.csv"
INSTRUCTIONS = ASSETS / "data" / "instructions.jsonl"
BASE = default_catalog().get(TEXT_MODEL).source
# A short seeded run: 400 headlines, 2 epochs, 2 s-ish of steps on the tiny DeepseekV3.
CLASSIFY = TrainSettings(epochs=2, learning_rate=3e-3, batch_size=16, max_length=32, seed=0)
LORA = TrainSettings(epochs=2, learning_rate=5e-3, batch_size=16, max_length=64, seed=0)


def headlines():
    return load_labeled(HEADLINES, "headline", "sentiment")


@pytest.fixture(scope="session")
def classifier(tmp_path_factory) -> ClassifyResult:
    data = headlines()
    out = tmp_path_factory.mktemp("classify") / "headlines"
    return train_classifier(data.subset(list(range(400))), BASE, out, CLASSIFY)


@pytest.fixture(scope="session")
def adapter(tmp_path_factory) -> LoraResult:
    chats = load_chats(INSTRUCTIONS)[:120]
    out = tmp_path_factory.mktemp("lora") / "sentiment-lora"
    return train_lora(chats, BASE, out, LORA)


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}
