#!/bin/bash
# Thirty-sixth session, call s44e: which commit made test_fp8_2048_row_chunks_match_512 fail ('split' 0.054 on main
# and on bafe2d5, s44d; it passed in the twenty-eighth session): the test on bis/<commit> trees in commit order.
source scripts/device_lib.sh s44e
for c in d924c8e 721a48f; do
  (cd bis/$c && t fp8_$c 60 -rfE --tb=line "tests/test_prefill_rows_gpu.py::test_fp8_2048_row_chunks_match_512")
done
grep -h "AssertionError" $L/*.log | head -6; snap
