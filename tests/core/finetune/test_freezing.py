import pytest

from core.errors import BadSettingError
from core.finetune.classify import load_for_classification
from core.finetune.freezing import freeze_lower
from tests.core.finetune.conftest import BASE


@pytest.fixture(scope="module")
def classifier_model():
    model, _tokenizer = load_for_classification(BASE, ("negative", "neutral", "positive"))
    return model


def trainable_roots(model) -> set[str]:
    """'score', 'model.norm', 'model.layers.3', ... for every parameter that requires grad."""
    roots = set()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            parts = name.split(".")
            roots.add(".".join(parts[:3]) if parts[1] == "layers" else ".".join(parts[:2]) if parts[0] == "model"
                      else parts[0])
    return roots


@pytest.mark.parametrize("fraction, frozen, expected", [
    (0.8, 3, {"model.layers.3", "model.norm", "score"}),
    (0.5, 2, {"model.layers.2", "model.layers.3", "model.norm", "score"}),
    (1.0, 4, {"model.norm", "score"}),
    (0.0, 0, {"model.layers.0", "model.layers.1", "model.layers.2", "model.layers.3", "model.norm", "score"}),
])
def test_only_the_top_blocks_and_the_head_require_grad(classifier_model, fraction, frozen, expected):
    report = freeze_lower(classifier_model, fraction)
    assert report.blocks == 4 and report.frozen_blocks == frozen
    assert trainable_roots(classifier_model) == expected  # embeddings always frozen
    assert report.trainable_params == sum(p.numel() for p in classifier_model.parameters() if p.requires_grad)


def test_frozen_fraction_outside_zero_to_one_is_refused(classifier_model):
    with pytest.raises(BadSettingError, match="between 0 and 1"):
        freeze_lower(classifier_model, 1.5)
