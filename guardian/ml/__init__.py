"""Layer 2: model code on torch (imported inside functions): bases, prompts, LoRA, scoring."""
