"""vramdeck: run big GGUF models on small GPUs, from a terminal."""

__version__ = "0.1.0"
