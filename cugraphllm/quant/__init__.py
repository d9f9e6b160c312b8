"""Quantized weights: a format is a property of one linear layer (`QuantLinear`), never a second model.

formats.py: the packed layouts (the contract between the loaders, the NumPy backend and the CUDA kernels), round-to-
nearest quantizers and the float64 dequantizing reference. layers.py: quantize at load (QuantSpec) and the checks of
loaded packed tensors. gptq.py / awq.py / repack.py: community int4 checkpoints repacked into our layout.
checkpoint.py: detection and loading of quantized folders; saved.py: our own folder (`quantize`). quality.py: the
CPU quality measurements.
"""
from .formats import (FORMATS, QuantLinear, dequantize, fp8_e4m3_decode, fp8_e4m3_encode,  # noqa: F401
                      fp8_e4m3_encode_f32, quantize)
from .layers import QuantSpec  # noqa: F401
