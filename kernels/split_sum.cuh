// K-split sums of kernels/gemm_w4_wgmma.cu that do not depend on which split finishes first: one tile a CTA, NT
// threads (named barrier 1) on TOK x ROWS f32 partials; tickets int32, one a tile, zero between launches.
#pragma once

// Park: each split parks its tile (P [TOK][ROWS + 4] in shared memory) in ws [tiles][splits][TOK][ROWS]; the one
// that arrives last (a ticket a tile) gets the tile's partials back, to add their sum in split order, so x does not
// depend on which split ran first (atomics of each split's partial would: (x + p0) + p1 != (x + p1) + p0). It also
// resets the ticket for the next launch. Others get nullptr.
template <int NT, int TOK, int ROWS>
__device__ __forceinline__ const float* park(const float* P, float* ws, int* tickets, int* last) {
    constexpr int PS = ROWS + 4;
    const int tile = blockIdx.y * gridDim.x + blockIdx.x;
    float* part = ws + (size_t)tile * gridDim.z * (TOK * ROWS);
    float* mine = part + (size_t)blockIdx.z * (TOK * ROWS);
    for (int e = threadIdx.x; e < TOK * (ROWS / 4); e += NT) {
        const int tok = e / (ROWS / 4), row = 4 * (e % (ROWS / 4));
        __stcg(reinterpret_cast<float4*>(mine + tok * ROWS + row),
               *reinterpret_cast<const float4*>(P + tok * PS + row));
    }
    __threadfence();
    asm volatile("bar.sync 1, %0;" :: "n"(NT) : "memory");
    if (threadIdx.x == 0) *last = atomicAdd(tickets + tile, 1) == (int)gridDim.z - 1;
    asm volatile("bar.sync 1, %0;" :: "n"(NT) : "memory");
    if (!*last) return nullptr;
    __threadfence();
    if (threadIdx.x == 0) tickets[tile] = 0;
    return part;
}

// Serial: split z waits for its turn (the tile's ticket == z; every CTA of the grid is resident, gpu/gemm_w4.py
// sees to it), adds its partial, and passes the turn on (the last split resets the ticket to 0 for the next
// launch): x gets ((x + p0) + p1) + ..., whichever split finished first, with no workspace.
template <int NT>
__device__ __forceinline__ void await_turn(const int* ticket) {
    if (threadIdx.x == 0) {
        int v;
        for (;;) {
            asm volatile("ld.acquire.gpu.global.b32 %0, [%1];" : "=r"(v) : "l"(ticket) : "memory");
            if (v == (int)blockIdx.z) break;
            __nanosleep(64);
        }
    }
    asm volatile("bar.sync 1, %0;" :: "n"(NT) : "memory");
}

template <int NT>
__device__ __forceinline__ void pass_turn(int* ticket) {
    __threadfence();  // this CTA's reductions into x before the next split's
    asm volatile("bar.sync 1, %0;" :: "n"(NT) : "memory");
    const int next = blockIdx.z + 1 == gridDim.z ? 0 : blockIdx.z + 1;
    if (threadIdx.x == 0) asm volatile("st.release.gpu.global.b32 [%0], %1;" :: "l"(ticket), "r"(next) : "memory");
}
