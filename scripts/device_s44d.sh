#!/bin/bash
# Thirty-sixth session, call s44d: s44c's two failures alone. test_fp8_2048_row_chunks_match_512 on main and on
# bafe2d5 (bis/before, the tree before the 16-row key-split ranges), and test_eager_equals_hybrid_random_weights
# alone on main (in s44c it ran out of memory beside test_memory_gpu's workers).
source scripts/device_lib.sh s44d
t main_fp8 150 -rfE --tb=short "tests/test_prefill_rows_gpu.py::test_fp8_2048_row_chunks_match_512"
(cd bis/before && t before_fp8 150 -rfE --tb=short "tests/test_prefill_rows_gpu.py::test_fp8_2048_row_chunks_match_512")
t main_eager 100 -rfE --tb=short "tests/test_engine_gpu.py::test_eager_equals_hybrid_random_weights"
grep -h "AssertionError" $L/*.log | head -4; snap
