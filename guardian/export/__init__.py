"""Exports of a trained model: GGUF (merged, f32/f16/q8_0) for llama.cpp and Ollama."""
