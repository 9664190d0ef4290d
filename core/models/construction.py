"""One model built at a time in this process.

Building a model changes process-wide state for as long as it lasts: transformers sets torch's default dtype to the
load's dtype and restores the old value afterwards (modeling_utils.local_torch_dtype), and accelerate's
init_empty_weights patches nn.Module.register_parameter. Two builds on two threads at once could restore each other's
dtype and leave the whole process on bf16, or hand one model the other's meta-device parameters. Every model
construction in core holds BUILDING (re-entrant, so a build may nest another).
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch import nn

BUILDING = threading.RLock()


def build_on_meta(model_cls: Any, config: Any, trust_remote_code: bool) -> nn.Module:
    """model_cls.from_config(config) with every tensor on the meta device: layer shapes without a weight."""
    with BUILDING, torch.device("meta"):
        return model_cls.from_config(config, trust_remote_code=trust_remote_code)
