"""Which prefills take the fused norms (gpu/ops.py prefill_norm_ok, state.Residual.pnorm), without a GPU."""
from types import SimpleNamespace

import numpy as np
import pytest

from cugraphllm.config import ModelConfig
from cugraphllm.gpu import ops
from cugraphllm.gpu.state import Residual
from cugraphllm.quant.formats import QuantLinear

CFG = ModelConfig.from_preset("llama-2-7b").with_(n_layers=2)


def _weights(quant_field=None):
    def layer(i):
        mats = {f: np.zeros(1) for f in ("wqkv", "wo", "w13", "w2")}
        if quant_field and i == 1:
            mats[quant_field] = object.__new__(QuantLinear)
        return SimpleNamespace(**mats)
    return SimpleNamespace(layers=[layer(0), layer(1)])


def test_16_bit_layers_take_the_fused_norms(monkeypatch):
    monkeypatch.setattr(ops, "PREFILL_NORM", True)
    assert ops.prefill_norm_ok(CFG, _weights())


@pytest.mark.parametrize("field", ["wqkv", "wo", "w13", "w2"])
def test_any_quantized_matrix_keeps_the_rmsnorm(field, monkeypatch):
    monkeypatch.setattr(ops, "PREFILL_NORM", True)
    assert not ops.prefill_norm_ok(CFG, _weights(field))


@pytest.mark.parametrize("change", [{"dim": 4104, "n_heads": 36, "n_kv_heads": 36}, {"hidden_dim": 11004}])
def test_shapes_the_own_kernels_cannot_run_keep_the_rmsnorm(change, monkeypatch):
    monkeypatch.setattr(ops, "PREFILL_NORM", True)
    assert not ops.prefill_norm_ok(CFG.with_(**change), _weights())


def test_the_switch_turns_it_off(monkeypatch):
    monkeypatch.setattr(ops, "PREFILL_NORM", False)
    assert not ops.prefill_norm_ok(CFG, _weights())


def test_residual_rows_keep_the_flag_for_prefill_rows_only():
    r = Residual(np.zeros((16, 8)), np.zeros((16, 8)), np.zeros(8), None, True)
    assert r.rows(10).pnorm and not r.rows(1).pnorm
    assert not Residual(np.zeros((16, 8))).rows(10).pnorm
