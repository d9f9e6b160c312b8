"""cugraphllm: low-latency LLaMA-2 inference on one GPU, PyTorch-free.

Import is cheap and touches no GPU library: names below load on first use.
"""
__version__ = "0.1.0"

_LAZY = {
    "ModelConfig": "config", "RuntimeConfig": "config", "PRESETS": "config",
    "Weights": "weights", "LayerWeights": "weights",
    "CugraphError": "errors",
    "LLM": "api", "ChatSession": "api",
    "Tokenizer": "tokenizer",
    "SamplingParams": "sampling",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'cugraphllm' has no attribute {name!r}")
