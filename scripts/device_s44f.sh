#!/bin/bash
# Thirty-sixth session, call s44f: test_fp8_2048_row_chunks_match_512 on main with the prefill attention pinned to
# the plain kernel (the test's premise since 721a48f, s44e), and the prefill-rows file's other tests.
source scripts/device_lib.sh s44f
t rows 150 -rfE --tb=short tests/test_prefill_rows_gpu.py
grep -h "AssertionError" $L/*.log | head -4; snap
