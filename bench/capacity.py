"""A capacity plan on paper for serving R1-Distill-Qwen-7B and DeepSeek-V3 on a remote engine (README "Scale out").

Run: .venv/bin/python -m bench.capacity [--gpu-gb 80 141] [--utilization 0.9]
Parameters are counted on the meta device from each published config (no weights downloaded); KV-cache bytes per
token are computed from the same configs: plain/GQA attention caches K and V for every KV head of every layer,
MLA caches one compressed latent (kv_lora_rank) plus the decoupled RoPE key (qk_rope_head_dim) per layer. Concurrent
users per GPU = (GPU memory x utilization - this GPU's share of the weights) / (KV bytes per token x context): an
upper bound from memory alone (activations, CUDA graphs and fragmentation take some of it; compute sets its own).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from transformers import AutoModelForCausalLM, DeepseekV3Config, PretrainedConfig, Qwen2Config

# deepseek-ai/DeepSeek-R1-Distill-Qwen-7B config.json (https://huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-7B)
R1_DISTILL_7B = Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                            num_key_value_heads=4, vocab_size=152064, max_position_embeddings=131072,
                            tie_word_embeddings=False)
# transformers' DeepseekV3Config defaults are DeepSeek-V3's config.json (hidden 7168, 61 layers, 128 heads,
# kv_lora_rank 512, qk_rope 64, qk_nope 128, v 128, 256 routed experts, 8 per token); the MTP layer is left out.
DEEPSEEK_V3 = DeepseekV3Config(num_mtp_layers=0)
BYTES = {"fp32": 4, "bf16": 2, "fp8/int8": 1, "int4": 0.5}
GB = 1e9


@dataclass(frozen=True)
class Plan:
    name: str
    params: int
    kv_bytes_per_token: int  # bf16 cache, as the model is served
    plain_kv_bytes_per_token: int  # the same model if it cached full per-head K and V
    gpus: tuple[int, ...]  # GPU counts the weights are spread over in the plan


def count_params(config: PretrainedConfig) -> int:
    """Parameters of the model a config describes, built on the meta device (no memory, no download)."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def kv_bytes(config: PretrainedConfig, dtype_bytes: int = 2) -> tuple[int, int]:
    """(bytes the model caches per token, bytes a plain multi-head cache of the same model would take)."""
    layers = config.num_hidden_layers
    if hasattr(config, "kv_lora_rank"):  # MLA
        compressed = layers * (config.kv_lora_rank + config.qk_rope_head_dim) * dtype_bytes
        k_dim = config.qk_nope_head_dim + config.qk_rope_head_dim
        plain = layers * config.num_attention_heads * (k_dim + config.v_head_dim) * dtype_bytes
        return compressed, plain
    head_dim = config.hidden_size // config.num_attention_heads
    gqa = layers * 2 * config.num_key_value_heads * head_dim * dtype_bytes
    return gqa, layers * 2 * config.num_attention_heads * head_dim * dtype_bytes


def users_per_gpu(plan: Plan, weight_bytes: float, gpus: int, gpu_gb: float, utilization: float,
                  context: int) -> int:
    free = gpu_gb * GB * utilization - weight_bytes / gpus
    return max(0, int(free // (plan.kv_bytes_per_token * context)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gpu-gb", type=float, nargs="+", default=[80, 141], help="H100 80 GB, H200 141 GB")
    parser.add_argument("--utilization", type=float, default=0.9, help="vLLM's --gpu-memory-utilization default")
    args = parser.parse_args()
    plans = []
    for name, config, gpus in (("R1-Distill-Qwen-7B", R1_DISTILL_7B, (1,)), ("DeepSeek-V3", DEEPSEEK_V3, (8, 16))):
        cached, plain = kv_bytes(config)
        plans.append(Plan(name, count_params(config), cached, plain, gpus))
    for plan in plans:
        print(f"\n{plan.name}: {plan.params / 1e9:.2f} B parameters")
        print("  weights: " + ", ".join(f"{p} {plan.params * b / GB:,.0f} GB" for p, b in BYTES.items()))
        print(f"  KV cache per token (bf16): {plan.kv_bytes_per_token:,} B ({plan.kv_bytes_per_token / 1024:.1f} KiB); "
              f"plain per-head K+V would be {plan.plain_kv_bytes_per_token:,} B "
              f"({plan.plain_kv_bytes_per_token / plan.kv_bytes_per_token:.1f}x)")
        for context in (4096, 32768):
            print(f"  one {context // 1024}K-token conversation holds {plan.kv_bytes_per_token * context / GB:.2f} GB")
        for precision in ("bf16", "fp8/int8", "int4"):
            weights = plan.params * BYTES[precision]
            for gpus in plan.gpus:
                for gpu in args.gpu_gb:
                    row = [users_per_gpu(plan, weights, gpus, gpu, args.utilization, c) for c in (4096, 32768)]
                    fits = weights / gpus < gpu * GB * args.utilization
                    print(f"  {precision:>8} weights on {gpus:>2} x {gpu:.0f} GB: "
                          + (f"users per GPU at 4K {row[0]:>5}, at 32K {row[1]:>4}" if fits else "weights do not fit"))


if __name__ == "__main__":
    main()
