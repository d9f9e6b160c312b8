# The CUDA C++ sources of cugraphllm live in this folder; installed, it is the package cugraphllm.kernels.
# Only cugraphllm/gpu/cuda_kernels.py reads them.
