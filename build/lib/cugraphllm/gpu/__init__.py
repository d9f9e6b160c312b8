"""The cuda backend: CuPy RawKernels, Numba attention, CUDA graphs. Nothing here is imported by `import cugraphllm`."""
