"""Fine-tuning: sequence classification and LoRA adapters on the app's causal LMs (CLI: python -m core.finetune)."""
