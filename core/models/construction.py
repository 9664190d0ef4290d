"""One model built at a time in this process.

Building a model changes process-wide state for as long as it lasts: transformers sets torch's default dtype to the
load's dtype and restores the old value afterwards (modeling_utils.local_torch_dtype), and accelerate's
init_empty_weights patches nn.Module.register_parameter. Two builds on two threads at once could restore each other's
dtype and leave the whole process on bf16, or hand one model the other's meta-device parameters. Every model
construction in core holds BUILDING (re-entrant, so a build may nest another).
"""

from __future__ import annotations

import threading

BUILDING = threading.RLock()
