"""Quantized weights: a format is a property of one linear layer (`QuantLinear`), never a second model.

formats.py: the packed layouts (the contract between the loaders, the NumPy backend and the CUDA kernels), round-to-
nearest quantizers and the float64 dequantizing reference.
"""
from .formats import FORMATS, QuantLinear, dequantize, quantize, fp8_e4m3_decode, fp8_e4m3_encode  # noqa: F401
