"""Benchmarks, conversions and device measurements. None edits sys.path: run them from the checkout as modules,
`python3 -m scripts.bench_kernels --help` (the checkout's root is then on the path, no install needed), or as
files with cugraphllm installed (`pip install -e .`), `python3 scripts/bench_kernels.py --help`."""
