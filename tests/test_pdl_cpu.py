"""gpu/pdl.py without a GPU: the ctypes mirrors of cuda.h's CUlaunchAttribute / CUlaunchConfig have the C layout,
and kernel arguments other than CuPy arrays and NumPy scalars are refused."""
import ctypes

import numpy as np
import pytest

from cugraphllm.gpu import pdl


def test_struct_layouts_match_cuda_h():
    assert ctypes.sizeof(pdl._Attr) == 72          # 4-byte id, 4 bytes padding, 64-byte value union
    assert pdl._Attr.value.offset == 8
    assert ctypes.sizeof(pdl._Config) == 56        # 7 unsigned, stream at 32, attrs at 40, numAttrs at 48
    assert pdl._Config.stream.offset == 32 and pdl._Config.attrs.offset == 40 and pdl._Config.n_attrs.offset == 48


def test_scalar_arguments_keep_their_width():
    assert isinstance(pdl._param(np.int32(7)), ctypes.c_int32)
    assert isinstance(pdl._param(np.uint64(0)), ctypes.c_uint64)
    assert pdl._param(np.float32(1.5)).value == 1.5
    for bad in (7, 1.5, None, np.float16(1)):
        with pytest.raises(TypeError, match="unsupported kernel argument"):
            pdl._param(bad)


def test_launch_attributes_per_kind():
    """PDL's attribute (id 6, value 1) and the cluster dimension (id 4, x y z), in that order, built once a kind."""
    arr, n = pdl._attrs(True, (1, 4, 1))
    assert n == 2 and (arr[0].id, arr[0].value[0]) == (6, 1) and (arr[1].id, *arr[1].value[:3]) == (4, 1, 4, 1)
    arr, n = pdl._attrs(False, (1, 8, 1))
    assert n == 1 and (arr[0].id, *arr[0].value[:3]) == (4, 1, 8, 1)
    assert pdl._attrs(True, None)[1] == 1 and pdl._attrs(True, None)[0][0].id == 6
    assert pdl._attrs(True, (1, 4, 1))[0] is pdl._attrs(True, (1, 4, 1))[0]
