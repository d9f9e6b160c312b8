"""gemm_tune's candidate check without a GPU (gpu/gemm_tune.py docstring): rows_close on NumPy arrays, and _verify
dropping a candidate whose output is off, leaves rows unwritten or goes non-finite, keeping the rest in order."""
import numpy as np
import pytest

from cugraphllm.gpu import gemm_tune


@pytest.fixture
def ref():
    rng = np.random.default_rng(7)
    return rng.standard_normal((37, 53)).astype(np.float32)


def test_rows_close_within_and_beyond_tolerance(ref):
    rng = np.random.default_rng(8)
    noise = rng.standard_normal(ref.shape).astype(np.float32)
    assert gemm_tune.rows_close(ref + 1e-4 * noise, ref)
    off = ref.copy()
    off[11] *= 1.05  # one row 5% off: the whole output fails
    assert not gemm_tune.rows_close(off, ref)
    assert gemm_tune.rows_close(off, ref, tol=0.06)


def test_rows_close_non_finite(ref):
    got = ref.copy()
    got[3, 4] = np.nan  # NaN where the reference is finite
    assert not gemm_tune.rows_close(got, ref)
    r2 = ref.copy()
    r2[3, :] = np.inf  # a reference row that is not finite is not compared
    g2 = ref + 1.0
    g2[np.arange(37) != 3] = ref[np.arange(37) != 3]
    assert gemm_tune.rows_close(g2, r2)


@pytest.mark.parametrize("accumulate", [False, True])
def test_verify_drops_wrong_candidates(ref, accumulate, monkeypatch):
    monkeypatch.setattr(gemm_tune, "VERIFY", True)
    prod = np.random.default_rng(9).standard_normal(ref.shape).astype(np.float32)
    c = ref.copy()

    def run(cand, out):
        val = prod * (1.2 if cand == 2 else 1.0)
        if cand == 3:
            val = val.copy()
            val[-1] = np.nan
        if cand == 4:  # writes only half the rows
            out[: out.shape[0] // 2] = (out[: out.shape[0] // 2] if accumulate else 0) + val[: out.shape[0] // 2]
            return
        if accumulate:
            out += val
        else:
            out[...] = val
    key = ("test", accumulate)
    got = gemm_tune._verify(key, c, accumulate, [0, 1, 2, 3, 4, 5], run)
    assert got == [0, 1, 5]
    assert gemm_tune._REJECTED.pop(key) == [2, 3, 4]
    assert np.array_equal(c, ref)  # the caller's output untouched


def test_verify_off_or_single_candidate(ref, monkeypatch):
    def run(cand, out):
        out[...] = cand  # every candidate different
    monkeypatch.setattr(gemm_tune, "VERIFY", False)
    assert gemm_tune._verify("k", ref, False, [0, 1, 2], run) == [0, 1, 2]
    monkeypatch.setattr(gemm_tune, "VERIFY", True)
    assert gemm_tune._verify("k", ref, False, [7], run) == [7]
    assert "k" not in gemm_tune._REJECTED
