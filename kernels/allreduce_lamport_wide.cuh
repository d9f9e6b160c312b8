// ar_lamport_wide's configuration (AR_PACKED, AR_WIDE_U) and per-chunk helpers (lw_elem .. lw_store, LwCall,
// lw_push, lw_add_packed). Part of allreduce_lamport.cu's module (included before lw_pull, which uses them);
// compiled only through allreduce_lamport.cu.

// AR_PACKED (1: compiled per storage dtype T): the message is n 32-bit words, each two T values (elements 2w, 2w + 1
// of a T [2n] partial sum, as cuBLAS wrote it); the protocol moves words exactly as it moves f32 elements (same
// chunks, slots, sentinel: a word of two 0xFFFF NaNs maps to 0x7FFFFFFF, two NaNs still), so half the NVLink bytes.
// Only with add and vec: out f32 [2n] += (sum over ranks in rank order of the T values, in f32).
#ifndef AR_PACKED
#define AR_PACKED 0
#endif
#ifndef AR_WIDE_U
#define AR_WIDE_U (AR_WORLD <= 2 ? 4 : AR_WORLD <= 4 ? 2 : 1)  // chunks per batch: ~8 float4 loads in flight a thread
#endif

// Element q of this thread in chunk c (VEC: 4 consecutive ones, else 4 strided by AR_THREADS), as ar_index. Loads
// are unconditional, so that a batch's loads are all in flight before the first is used (a load under a branch
// with a default value is waited for at the branch's end): a slot element of a covered chunk is below the cap
// (whole chunks), an input element past n is read at 0 instead (in place, a read racing block 0's write: its value,
// undefined then, is never used); values past n are never pushed, waited for or written.
template <int VEC>
__device__ __forceinline__ int lw_elem(int c, int q) {
    return c * AR_CHUNK + (VEC ? AR_PER * (int)threadIdx.x + q : (int)threadIdx.x + q * AR_THREADS);
}
// This rank's addends of chunk c: in[], the sentinel's bits mapped (lp_value).
template <int VEC>
__device__ __forceinline__ void lw_mine(const float* in, int n, int c, float* v) {
    if (VEC) {
        const int i = lw_elem<1>(c, 0);
        const float4 t = *reinterpret_cast<const float4*>(in + (i < n ? i : 0));
        v[0] = lp_value(t.x), v[1] = lp_value(t.y), v[2] = lp_value(t.z), v[3] = lp_value(t.w);
    } else {
#pragma unroll
        for (int q = 0; q < AR_PER; ++q) {
            const int i = lw_elem<0>(c, q);
            v[q] = lp_value(in[i < n ? i : 0]);
        }
    }
}
// One strong load of this thread's elements of chunk c from a slot.
template <int VEC>
__device__ __forceinline__ void lw_load(const float* slot, int c, float* v) {
    if (VEC) {
        const float4 t = ar_load4(slot + lw_elem<1>(c, 0));
        v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
    } else {
#pragma unroll
        for (int q = 0; q < AR_PER; ++q) v[q] = ar_load(slot + lw_elem<0>(c, q));
    }
}
// Whether an element of v below n is still empty.
template <int VEC>
__device__ __forceinline__ bool lw_empty(const float* v, int n, int c) {
    bool e = false;
#pragma unroll
    for (int q = 0; q < AR_PER; ++q) e |= lp_empty(v[q]) & (lw_elem<VEC>(c, VEC ? 0 : q) < n);
    return e;
}
// v into this thread's elements of chunk c below n (the push; AR_EMPTY: the reset after read).
template <int VEC>
__device__ __forceinline__ void lw_store(float* slot, int n, int c, const float* v) {
    if (VEC) {
        const int i = lw_elem<1>(c, 0);
        if (i < n) lp_store4(slot + i, v[0], v[1], v[2], v[3]);
    } else {
#pragma unroll
        for (int q = 0; q < AR_PER; ++q)
            if (lw_elem<0>(c, q) < n) lp_store(slot + lw_elem<0>(c, q), v[q]);
    }
}

// What every thread of a block needs for one call: the buffers, the call, and its chunks b, b + G, ... (m of them).
struct LwCall {
    const float* in;
    float* out;
    float* peer[AR_WORLD];  // slot [g][rank] of every peer's data (peer[rank] unused)
    float* mine;            // this rank's slots of generation g: + src * cap
    long long cap, timeout_ns;
    int n, rank, b, G, m, add;  // add: out += the sum (the prefill residual update) instead of out = the sum
    unsigned s;
    int* said;
};

// Step 1 for NB chunks of the block from its j-th on (their input loads in flight together).
template <int VEC, int NB>
__device__ __forceinline__ void lw_push(const LwCall& k, int j) {
    float v[NB][AR_PER];
#pragma unroll
    for (int u = 0; u < NB; ++u) lw_mine<VEC>(k.in, k.n, k.b + (j + u) * k.G, v[u]);
#pragma unroll
    for (int p = 0; p < AR_WORLD; ++p)
#pragma unroll
        for (int u = 0; u < NB; ++u)
            if (p != k.rank) lw_store<VEC>(k.peer[p], k.n, k.b + (j + u) * k.G, v[u]);
}

#if AR_PACKED
// Step 4 of a packed call for this thread's 4 words from word i (< n: vec, so all 4 or none): out[2i .. 2i + 7] +=
// the T values of every rank's words, widened to f32 and summed in rank order (every rank the same bits).
template <int NB>
__device__ __forceinline__ void lw_add_packed(const LwCall& k, long long i, const float* mine,
                                              const float (*got)[NB][AR_PER], int u) {
    if (i >= k.n) return;
    float acc[2 * AR_PER];
#pragma unroll
    for (int q = 0; q < AR_PER; ++q)
#pragma unroll
        for (int src = 0; src < AR_WORLD; ++src) {
            const unsigned w = __float_as_uint(src == k.rank ? mine[q] : got[src][u][q]);
            const float2 f = to_f2(*reinterpret_cast<const T2*>(&w));
            acc[2 * q] = src == 0 ? f.x : acc[2 * q] + f.x;
            acc[2 * q + 1] = src == 0 ? f.y : acc[2 * q + 1] + f.y;
        }
    float* o = k.out + 2 * i;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const float4 x = *reinterpret_cast<const float4*>(o + 4 * h);
        ar_store4(o + 4 * h, x.x + acc[4 * h], x.y + acc[4 * h + 1], x.z + acc[4 * h + 2], x.w + acc[4 * h + 3]);
    }
}
#endif
