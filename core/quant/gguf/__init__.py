"""GGUF precisions served by llama.cpp: convert and quantize with its own tools, load, stream, measure."""
