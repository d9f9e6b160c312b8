"""What LLM.load (api.py) reads before it builds an engine: the model source (a dummy preset's ModelConfig or the
loaded Checkpoint, in the dtype the backend takes) and the tokenizer, padded to the model's vocabulary."""
from __future__ import annotations

from .config import ModelConfig, RuntimeConfig
from .errors import TokenizerError


def tokenizer_for(path, vocab_size: int):
    """The tokenizer, padded to the model's vocabulary (see tokenizer.py); refused when it cannot match."""
    from .tokenizer import MAX_PADDING, Tokenizer
    tok = Tokenizer.load(path)
    if tok.vocab_size > vocab_size:
        raise TokenizerError(f"tokenizer {path}: {tok.vocab_size} pieces, more than the model's "
                             f"vocabulary of {vocab_size}")
    if vocab_size - tok.vocab_size > MAX_PADDING:
        raise TokenizerError(f"tokenizer {path}: {tok.vocab_size} pieces for a model vocabulary of {vocab_size} "
                             f"(padding of at most {MAX_PADDING} ids is accepted): the wrong tokenizer?")
    tok.pad_to(vocab_size)
    return tok


def load_source(kind: str, arg: str, tokenizer, runtime: RuntimeConfig, progress: bool):
    """(ModelConfig of a dummy preset or the loaded Checkpoint, tokenizer path or None)."""
    from .loader import load_checkpoint
    if kind == "dummy":
        return ModelConfig.from_preset(arg), tokenizer
    # numpy computes in float32; cuda float16 takes float16 host copies; bfloat16 converts from float32
    # (a float16 detour would flush bf16 values below fp16's normal range)
    storage = "float16" if runtime.backend == "cuda" and runtime.dtype == "float16" else "float32"
    # cuda: matrices stream from the memory map straight into the upload (host RAM bounded by a chunk), and
    # --quant is applied on the GPU there; numpy: quantized on the host as each layer is built
    cuda = runtime.backend == "cuda"
    source = load_checkpoint(arg, tokenizer=tokenizer, dtype=storage, progress=None if progress else False,
                             lazy=cuda, quant=None if cuda else runtime.quant_spec())
    return source, source.tokenizer_path
