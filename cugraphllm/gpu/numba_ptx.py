"""Numba intrinsics of the attention kernels: inline LLVM IR / PTX that Numba's CUDA API lacks.

16-bit storage travels as int16 bits (conversions below); PDL's griddepcontrol (gpu/pdl.py, common.cuh
pdl_enter); a relaxed atomic add for the split-K ticket; the sm_90 cluster barrier and distributed-shared-memory
load of the cluster combine (decode_combine.py); 16-byte read-only loads of K/V words. Imported by the compile
subprocess only, like the kernels that use them.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic


def _low16(builder, x):
    return x if x.type.width == 16 else builder.trunc(x, ir.IntType(16))


# ---- bit-level conversions (LLVM IR: cvt.f32.f16 / cvt.rn.f16.f32 / shifts for bf16) ---------------------------
@intrinsic
def _f16_to_f32(typingctx, x):
    def codegen(context, builder, sig, args):
        h = builder.bitcast(_low16(builder, args[0]), ir.HalfType())
        return builder.fpext(h, ir.FloatType())
    return types.float32(x), codegen


@intrinsic
def _bf16_to_f32(typingctx, x):
    def codegen(context, builder, sig, args):
        b = builder.zext(_low16(builder, args[0]), ir.IntType(32))
        return builder.bitcast(builder.shl(b, ir.Constant(ir.IntType(32), 16)), ir.FloatType())
    return types.float32(x), codegen


@intrinsic
def _f32_to_f16(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))
    return types.int16(x), codegen


@intrinsic
def _f32_to_bf16(typingctx, x):
    # round to nearest even on the bits (inputs are finite: softmax-weighted means of finite values)
    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        b = builder.bitcast(args[0], i32)
        odd = builder.and_(builder.lshr(b, ir.Constant(i32, 16)), ir.Constant(i32, 1))
        b = builder.add(b, builder.add(odd, ir.Constant(i32, 0x7FFF)))
        return builder.trunc(builder.lshr(b, ir.Constant(i32, 16)), ir.IntType(16))
    return types.int16(x), codegen


@intrinsic
def _atomic_add_i32(typingctx, ptr, idx, val):
    """Returns the old value of ptr[idx] (relaxed atomic; ordering comes from cuda.threadfence)."""
    def codegen(context, builder, sig, args):
        p = builder.gep(args[0], [args[1]])
        v = context.cast(builder, args[2], sig.args[2], types.int32)
        return builder.atomic_rmw("add", p, v, "monotonic")
    return types.int32(ptr, idx, val), codegen


def _griddep(*ops):
    """codegen of an intrinsic that emits griddepcontrol.<op> for each of ops, in order (none: nothing)."""
    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.VoidType(), [])
        for op in ops:
            builder.asm(fnty, f"griddepcontrol.{op};", "~{memory}", [], True)
        return context.get_dummy_value()
    return codegen


@intrinsic
def _pdl_enter(typingctx):
    """common.cuh pdl_enter (sm_90): let the next PDL kernel launch, then wait until every earlier kernel has
    completed and its writes are visible. First thing in a kernel launched with PDL (gpu/pdl.py)."""
    return types.none(), _griddep("launch_dependents", "wait")


@intrinsic
def _pdl_enter_late(typingctx):
    """_pdl_enter with the wait first (common.cuh PDL_LATE; spec "pdl_order": "late", CUGRAPHLLM_PDL_ORDER)."""
    return types.none(), _griddep("wait", "launch_dependents")


@intrinsic
def _pdl_trigger(typingctx):
    """The first half of _pdl_enter: let the next PDL kernel launch (its blocks then stage their weights)."""
    return types.none(), _griddep("launch_dependents")


@intrinsic
def _pdl_wait(typingctx):
    """The second half of _pdl_enter: wait until every earlier kernel has completed and its writes are visible."""
    return types.none(), _griddep("wait")


@intrinsic
def _no_trigger(typingctx):
    """_pdl_enter's stand-in below sm_90: emits nothing."""
    return types.none(), _griddep()


@intrinsic
def _cluster_sync(typingctx):
    """Every thread of every block of the cluster arrives; returns once all have (release / acquire: shared-memory
    writes before it are visible to the cluster's blocks after it). sm_90, launched with a cluster dimension."""
    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.VoidType(), [])
        builder.asm(fnty, "barrier.cluster.arrive.release;\n\tbarrier.cluster.wait.acquire;", "~{memory}", [], True)
        return context.get_dummy_value()
    return types.none(), codegen


@intrinsic
def _dsmem_f32(typingctx, arr, idx, rank):
    """arr[idx] of the block of cluster rank `rank` (arr: a cuda.shared.array of float32): mapa turns this block's
    generic address into that block's, and a generic load reads it (distributed shared memory, sm_90)."""
    def codegen(context, builder, sig, args):
        i64, i32 = ir.IntType(64), ir.IntType(32)
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.gep(data, [context.cast(builder, args[1], sig.args[1], types.int64)])
        r = context.cast(builder, args[2], sig.args[2], types.int32)
        fnty = ir.FunctionType(ir.FloatType(), [i64, i32])
        return builder.asm(fnty, "{\n\t.reg .u64 ra;\n\tmapa.u64 ra, $1, $2;\n\tld.f32 $0, [ra];\n\t}",
                           "=f,l,r", [builder.ptrtoint(ptr, i64), r], True)
    return types.float32(arr, idx, rank), codegen


@intrinsic
def _ldg16(typingctx, ptr, idx):
    """(lo, hi) int64 halves of the 16-byte word idx of ptr: one ld.global.nc.v2.u64 (read-only path; K/V are not
    written during the kernel). ptr must be 16-byte aligned."""
    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        off = builder.mul(context.cast(builder, args[1], sig.args[1], types.int64), ir.Constant(i64, 16))
        addr = builder.add(builder.ptrtoint(args[0], i64), off)
        fnty = ir.FunctionType(ir.LiteralStructType([i64, i64]), [i64])
        pair = builder.asm(fnty, "ld.global.nc.v2.u64 {$0, $1}, [$2];", "=l,=l,l", [addr], False)
        halves = [builder.extract_value(pair, 0), builder.extract_value(pair, 1)]
        return context.make_tuple(builder, sig.return_type, halves)
    return types.UniTuple(types.int64, 2)(ptr, idx), codegen
