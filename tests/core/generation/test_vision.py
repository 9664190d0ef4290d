"""Captions and follow-ups on the real bundled DeepSeek-VL, through the app's path: load_image -> stream_caption."""

from __future__ import annotations

import threading

import pytest

from core.config import LimitsConfig
from core.errors import BadSettingError, InputTooLongError
from core.generation.images import load_image
from core.generation.prompting import ChatTurn
from core.generation.sampling import SamplingParams
from core.generation.vision import STYLE_PROMPTS, VisionRequest, stream_caption, vision_messages
from core.serving.service import ContextMeter, Finished, Service
from core.serving.zerogpu import ZeroGpuSection
from scripts.shapes import CAPTION_PROMPTS, ShapeScene, draw_scene, parse_attributes, question
from scripts.vision_eval import generate_replies, heldout_scenes
from tests.conftest import VISION_MODEL
from tests.core.serving.test_service import ZeroGpuStandIn, text_of

GREEDY = SamplingParams(max_new_tokens=40, temperature=0, repetition_penalty=1.0)
HELDOUT_SEED = 11  # not the training script's validation (1) or test (2) seed; odd draw seeds are never trained on
RED_CIRCLE = ShapeScene("circle", "red", "large", 1, "left", "plain")


@pytest.fixture(scope="module")
def vision(registry):
    return registry.get(VISION_MODEL, "fp32")


def caption_of(loaded, request: VisionRequest, params: SamplingParams = GREEDY,
               stop: threading.Event | None = None, **kwargs) -> tuple[str, object]:
    stream = stream_caption(loaded, request, params, stop or threading.Event(), **kwargs)
    return "".join(stream).strip(), stream


def test_style_prompts_are_the_ones_the_bundled_model_learned():
    assert STYLE_PROMPTS == {style: prompts[0] for style, prompts in CAPTION_PROMPTS.items()}


@pytest.mark.parametrize("style,n", [("short", 100), ("detailed", 100)])
def test_heldout_caption_attributes_are_at_least_90_percent_right(vision, style, n):
    right = total = 0
    for scene, draw_seed, side in heldout_scenes(n, HELDOUT_SEED):
        image = load_image(draw_scene(scene, side, draw_seed), LimitsConfig()).image
        got = parse_attributes(caption_of(vision, VisionRequest(image, style=style))[0])
        truth = scene.attributes(style)
        right += sum(got[a] == truth[a] for a in truth)
        total += len(truth)
    assert right / total >= 0.9, f"{style}: {right}/{total} attributes right"


def test_app_path_gives_the_same_caption_as_scripts_vision_eval(vision):
    for scene, draw_seed, side in heldout_scenes(3, HELDOUT_SEED + 1):
        image = draw_scene(scene, side, draw_seed)
        chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": STYLE_PROMPTS["detailed"]}]}]
        reference = generate_replies(vision.model, vision.processor, [image], [chat])[0]
        assert caption_of(vision, VisionRequest(load_image(image, LimitsConfig()).image, style="detailed"))[0] \
            == reference


def test_follow_up_questions_are_answered_about_the_same_image(vision):
    right = 0
    scenes = heldout_scenes(12, HELDOUT_SEED + 2)
    for i, (scene, draw_seed, side) in enumerate(scenes):
        image = draw_scene(scene, side, draw_seed)
        first, _ = caption_of(vision, VisionRequest(image))
        ask, want = question(scene, ("colour", "count", "shape", "size")[i % 4])
        history = (ChatTurn("user", STYLE_PROMPTS["short"]), ChatTurn("assistant", first))
        right += caption_of(vision, VisionRequest(image, ask, history=history))[0] == want
    assert right >= 10, f"{right}/12 follow-up answers right"


def test_image_goes_with_the_first_user_turn_only():
    history = (ChatTurn("user", "Caption this image."), ChatTurn("assistant", "A red circle."))
    messages = vision_messages(VisionRequest(draw_scene(RED_CIRCLE), "What colour?", history=history), list(history))
    images = [i for i, m in enumerate(messages) for part in m["content"] if part["type"] == "image"]
    assert images == [0] and messages[-1]["content"] == [{"type": "text", "text": "What colour?"}]


def test_long_conversation_drops_oldest_follow_ups_and_keeps_the_image(vision):
    image = draw_scene(RED_CIRCLE)
    history = tuple(ChatTurn(role, text) for _ in range(40)
                    for role, text in (("user", "What colour is the shape?"), ("assistant", "Red.")))
    answer, stream = caption_of(vision, VisionRequest(image, "What shape is it?", history=history),
                                max_context_tokens=160)
    assert stream.plan.dropped_turns > 0 and stream.plan.prompt_tokens <= 160 - GREEDY.max_new_tokens
    assert answer == "A circle."


def test_max_new_tokens_beyond_the_window_is_refused(vision):
    with pytest.raises(InputTooLongError, match="window"):
        stream_caption(vision, VisionRequest(draw_scene(RED_CIRCLE)), SamplingParams(max_new_tokens=600),
                       threading.Event())


def test_unknown_style_is_refused(vision):
    with pytest.raises(BadSettingError, match="caption style"):
        stream_caption(vision, VisionRequest(draw_scene(RED_CIRCLE), style="poem"), GREEDY,  # type: ignore[arg-type]
                       threading.Event())


def test_text_model_refuses_an_image(deepseek):
    with pytest.raises(BadSettingError, match="cannot see images"):
        stream_caption(deepseek, VisionRequest(draw_scene(RED_CIRCLE)), GREEDY, threading.Event())


def test_stop_ends_the_caption_and_says_so(vision):
    stop = threading.Event()
    stream = stream_caption(vision, VisionRequest(draw_scene(RED_CIRCLE)), SamplingParams(max_new_tokens=200,
                            temperature=1.0, seed=0), stop)
    for _ in stream:
        stop.set()
    assert stream.stats.stopped and stream.stats.new_tokens < 200


def test_bf16_caption_runs_with_pixels_in_the_model_dtype(registry):
    loaded = registry.get(VISION_MODEL, "bf16")
    text, stream = caption_of(loaded, VisionRequest(draw_scene(RED_CIRCLE, 96, 1)))
    assert parse_attributes(text)["shape"] == "circle" and stream.stats.precision == "bf16"


def test_service_caption_streams_meter_text_then_stats(registry):
    events = list(Service(registry, LimitsConfig()).stream(VisionRequest(draw_scene(RED_CIRCLE, 96, 1)),
                                                           VISION_MODEL, "fp32", GREEDY))
    assert isinstance(events[0], ContextMeter) and "Context" in events[0].summary
    assert isinstance(events[-1], Finished)
    assert parse_attributes(text_of(events))["colour"] == "red"


def test_zerogpu_caption_gets_a_duration_that_counts_the_image(registry):
    stand_in = ZeroGpuStandIn()
    zero = ZeroGpuSection(enabled=True, max_duration_s=120, overhead_s=1, load_s=0, prefill_tokens_per_s=100,
                          decode_tokens_per_s={"fp32": 10})
    service = Service(registry, LimitsConfig(), zero, stand_in)
    events = list(service.stream(VisionRequest(draw_scene(RED_CIRCLE, 96, 1)), VISION_MODEL, "fp32", GREEDY))
    assert isinstance(events[-1], Finished)
    assert stand_in.durations == [pytest.approx(1 + 576 / 100 + 40 / 10, abs=1)]
