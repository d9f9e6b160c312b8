"""The host side of the fp8 "lt" path without a GPU: the switch, gemm_tune's fp8 bookkeeping (report rows, forget), and
the cuBLASLt enum values of gpu/cublaslt.py against cublasLt.h where a copy of the header is installed."""
import pytest
from cublaslt_header import enum as header_enum, header_text

from cugraphllm.errors import ConfigError


@pytest.mark.parametrize("value,want", [(None, True), ("", True), ("1", True), ("0", False), ("yes", None)])
def test_outer_switch(value, want, monkeypatch):
    from cugraphllm.gpu import gemm_quant_lt
    if value is None:
        monkeypatch.delenv("CUGRAPHLLM_FP8_OUTER_SCALE", raising=False)
    else:
        monkeypatch.setenv("CUGRAPHLLM_FP8_OUTER_SCALE", value)
    if want is None:  # not 0 / 1: a one-line error (it used to count as on)
        with pytest.raises(ConfigError, match="CUGRAPHLLM_FP8_OUTER_SCALE='yes': expected 0 or 1"):
            gemm_quant_lt.outer_enabled()
    else:
        assert gemm_quant_lt.outer_enabled() is want


@pytest.mark.parametrize("M,floor,want", [(256, None, False), (255, "256", False), (128, "0", True)])
def test_outer_min_rows(M, floor, want, monkeypatch):
    """Below CUGRAPHLLM_FP8_OUTER_MIN_ROWS (default 384) the op keeps the unscaled product, decided before any
    device query (the stand-in weight has no device arrays: reaching them would raise)."""
    from cugraphllm.gpu import gemm_quant_lt
    monkeypatch.setenv("CUGRAPHLLM_FP8_OUTER_SCALE", "1")
    if floor is None:
        monkeypatch.delenv("CUGRAPHLLM_FP8_OUTER_MIN_ROWS", raising=False)
    else:
        monkeypatch.setenv("CUGRAPHLLM_FP8_OUTER_MIN_ROWS", floor)
    assert (M >= gemm_quant_lt.outer_min_rows()) is want
    if not want:
        class W:
            shape = (4096, 4096)
        assert gemm_quant_lt.scaled("float32", True, W(), None, M) is False


def test_report_and_forget_fp8(monkeypatch):
    """report(): a 16-bit key keeps its GemmEx baseline, an fp8 key reports its scales and candidate 0 as baseline;
    forget_fp8() drops fp8 keys only."""
    from cugraphllm.gpu import gemm_tune
    monkeypatch.setattr(gemm_tune, "_CHOICE", {})
    monkeypatch.setattr(gemm_tune, "_TIMES", {})
    k16 = (0, 512, 4096, 4096, "float16", "float32", True)
    k8 = (0, 512, 22016, 4096, "e4m3", "float16", False, True)
    k8u = (0, 128, 4096, 11008, "e4m3", "float32", False, False)
    gemm_tune._CHOICE.update({k16: gemm_tune.GEMMEX, k8: 3, k8u: 0})
    gemm_tune._TIMES.update({k16: {gemm_tune.GEMMEX: 0.031, 0: 0.033}, k8: {0: 0.101, 3: 0.0874},
                             k8u: {0: 0.02, 1: 0.025}})
    rows = {(r["N"], r["dtype"]): r for r in gemm_tune.report()}
    assert rows[(4096, "float16")]["choice"] == "gemmex" and rows[(4096, "float16")]["gemmex_ms"] == 0.031
    r8 = rows[(22016, "e4m3")]
    assert (r8["choice"], r8["ms"], r8["first_ms"], r8["scales"], r8["out"]) == ("lt3", 0.0874, 0.101, "outer",
                                                                                   "float16")
    assert rows[(4096, "e4m3")]["scales"] == "none" and rows[(4096, "e4m3")]["choice"] == "lt0"
    gemm_tune.forget_fp8()
    assert set(gemm_tune._CHOICE) == {k16} and set(gemm_tune._TIMES) == {k16}


def test_enum_values_match_cublaslt_header():
    from cugraphllm.gpu import cublaslt
    text = header_text()

    def enum(name):
        return header_enum(text, name)
    assert enum("CUBLASLT_MATMUL_DESC_A_SCALE_POINTER") == cublaslt.DESC_A_SCALE_POINTER
    assert enum("CUBLASLT_MATMUL_DESC_B_SCALE_POINTER") == cublaslt.DESC_B_SCALE_POINTER
    assert enum("CUBLASLT_MATMUL_DESC_A_SCALE_MODE") == cublaslt.DESC_A_SCALE_MODE
    assert enum("CUBLASLT_MATMUL_DESC_B_SCALE_MODE") == cublaslt.DESC_B_SCALE_MODE
    assert enum("CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F") == cublaslt.MATRIX_SCALE_OUTER_VEC_32F
    assert enum("CUBLASLT_MATMUL_DESC_TRANSA") == cublaslt.DESC_TRANSA


def test_outer_desc_attributes_accepted_by_libcublaslt():
    """Host only (no GPU needed): the installed libcublasLt takes our attribute ids with our value sizes (a wrong size
    is refused with CUBLAS_STATUS_INVALID_VALUE = 7) and gives the values back."""
    import ctypes
    from cugraphllm.gpu import cublaslt
    from cugraphllm.gpu.cublas import CublasError
    try:
        lib = cublaslt._lib()
    except (CublasError, OSError) as exc:
        pytest.skip(f"no libcublasLt: {exc}")
    vp = ctypes.c_void_p
    get = lib.cublasLtMatmulDescGetAttribute
    get.argtypes, get.restype = [vp, ctypes.c_int, vp, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)], ctypes.c_int
    desc = vp()
    assert lib.cublasLtMatmulDescCreate(ctypes.byref(desc), cublaslt.CUBLAS_COMPUTE_32F, cublaslt.CUDA_R_32F) == 0
    values = [(cublaslt.DESC_A_SCALE_MODE, ctypes.c_int32(cublaslt.MATRIX_SCALE_OUTER_VEC_32F)),
              (cublaslt.DESC_B_SCALE_MODE, ctypes.c_int32(cublaslt.MATRIX_SCALE_OUTER_VEC_32F)),
              (cublaslt.DESC_A_SCALE_POINTER, ctypes.c_void_p(0x7F0000001000)),
              (cublaslt.DESC_B_SCALE_POINTER, ctypes.c_void_p(0x7F0000002000))]
    for attr, val in values:
        cublaslt._set(lib.cublasLtMatmulDescSetAttribute, desc, attr, val)
        back, n = type(val)(), ctypes.c_size_t()
        assert get(desc, attr, ctypes.byref(back), ctypes.sizeof(back), ctypes.byref(n)) == 0
        assert (back.value, n.value) == (val.value, ctypes.sizeof(val)), f"attribute {attr}"
    wide = ctypes.c_int64(cublaslt.MATRIX_SCALE_OUTER_VEC_32F)
    assert lib.cublasLtMatmulDescSetAttribute(desc, cublaslt.DESC_A_SCALE_MODE, ctypes.byref(wide), 8) == 7
    assert 0 < cublaslt.version()
