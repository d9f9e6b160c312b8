// The element-level accesses of allreduce_lamport.cu's buffers: the sentinel's mapping (lp_value, lp_empty), the
// strong stores, the timeout report (lp_missing) and the poll of one peer's slot (lp_poll). Part of
// allreduce_lamport.cu's module (included after its AR_* defines); compiled only through allreduce_lamport.cu.

__device__ __forceinline__ float lp_value(float v) {
    return __float_as_uint(v) == AR_EMPTY ? __uint_as_float(AR_QNAN) : v;
}
__device__ __forceinline__ bool lp_empty(float v) { return __float_as_uint(v) == AR_EMPTY; }
__device__ __forceinline__ void lp_store4(float* p, float a, float b, float c, float d) {
    asm volatile("st.relaxed.sys.global.v4.f32 [%0], {%1,%2,%3,%4};" ::"l"(p), "f"(a), "f"(b), "f"(c), "f"(d)
                 : "memory");
}
__device__ __forceinline__ void lp_store(float* p, float v) {
    asm volatile("st.relaxed.sys.global.f32 [%0], %1;" ::"l"(p), "f"(v) : "memory");
}

// Spun longer than timeout_ns on element i from rank src: one line per block (the first thread), then trap. K: one
// copy per kernel family (a non-inlined callee shared with ar_lamport_wide would change the decode kernels' code).
template <int K = 0>
__device__ __noinline__ void lp_missing(int* said, int rank, int src, unsigned s, long long i, long long timeout_ns) {
    if (atomicExch(said, 1) == 0)
        printf("cugraphllm all-reduce (lamport): rank %d block %d waited %lld ns for element %lld from rank %d (call "
               "%u, generation %u): a peer GPU never reached this collective\n", rank, (int)blockIdx.x, timeout_ns,
               i, src, s, s % AR_GENS);
    __trap();
}

// Step 3 for one peer: its values of this thread's elements, once none is empty (vec: one float4).
__device__ __forceinline__ void lp_poll(const float* slot, int n, int vec, const long long* idx, float* v, int* said,
                                        int rank, int src, unsigned s, long long timeout_ns) {
    u64 t0 = 0;
    if (vec) {
        if (idx[0] < n) {
            for (;;) {
                const float4 t = ar_load4(slot + idx[0]);
                v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
                if (!(lp_empty(t.x) | lp_empty(t.y) | lp_empty(t.z) | lp_empty(t.w))) break;
                if (t0 == 0) t0 = ar_clock();  // the clock only once a value is late
                else if ((long long)(ar_clock() - t0) > timeout_ns) lp_missing(said, rank, src, s, idx[0], timeout_ns);
            }
        }
    } else {
#pragma unroll
        for (int k = 0; k < AR_PER; ++k) {
            if (idx[k] >= n) continue;
            while (lp_empty(v[k] = ar_load(slot + idx[k]))) {
                if (t0 == 0) t0 = ar_clock();
                else if ((long long)(ar_clock() - t0) > timeout_ns) lp_missing(said, rank, src, s, idx[k], timeout_ns);
            }
        }
    }
}
