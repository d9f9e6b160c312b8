// fp8 activation quantization fused into its producer (gpu/fp8_actq.py, CUGRAPHLLM_FP8_FUSE_ACTQ): each kernel
// writes what gemm_quant.cu's quant_act_fp8 would write from its 16-bit output, bit for bit (fp8_codes.cuh), so
// the next cuBLASLt fp8 product reads the codes without a separate pass over the activations.
// - quant_act_fp8_v:       quant_act_fp8 without perm, 8 columns per 16-byte load (K % 8 == 0);
// - silu_mul_quant_rows:   gemm.cu silu_mul_rows (g T [M, 2F] = [gate | up], the scaled product) + the quantization
//                          of h for w2; h T [M, F] written too when write_h (else never touched);
// - w8a8_silu_quant_rows:  the same after gemm_quant.cu w8a8_silu_rows (d f32 [M, 2F] * sa[m] * sw[n], unscaled).
// One block per token row m (grid (M,)); two passes over the row: the values and their amax, then the codes. A row
// of at most KEEP 8-column pieces a thread (7B / 13B) keeps its values in registers between the passes; longer
// rows recompute them (same expressions, same bits; the second read comes from L1 / L2). F % 8 == 0, rows of g, d,
// a 16-byte aligned. aq [M, cols] uint8 codes, sa [M] f32 token scales; gain f32 [cols] optional (has_gain).
// w8a8_silu_quant_rows may be given sa as both w13's token scales (in) and w2's (out): each block reads its
// sa[m] before it writes it.
#include "common.cuh"
#include "fp8_codes.cuh"
#define WM 1
#define NTOK 8
#include "gemm_common.cuh"  // silu_mul, Pack8

// 8 pre-SiLU gate / up values of columns f..f+7 of row m.
struct FromT {  // g T [M, 2F], the scaled product
    const T* row;
    int F;
    __device__ __forceinline__ void load(int f, float (&a)[8], float (&b)[8]) const {
        Pack8 pa, pb;
        pa.u = *reinterpret_cast<const uint4*>(row + f);
        pb.u = *reinterpret_cast<const uint4*>(row + F + f);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 x = to_f2(pa.h[i]), y = to_f2(pb.h[i]);
            a[2 * i] = x.x; a[2 * i + 1] = x.y; b[2 * i] = y.x; b[2 * i + 1] = y.y;
        }
    }
};

struct FromF32 {  // d f32 [M, 2F] unscaled, * sa[m] * sw[n] as w8a8_silu_rows
    const float* row;
    const float* sw;
    float s;
    int F;
    __device__ __forceinline__ void load(int f, float (&a)[8], float (&b)[8]) const {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const float4 x = *reinterpret_cast<const float4*>(row + f + 4 * h);
            const float4 y = *reinterpret_cast<const float4*>(row + F + f + 4 * h);
            const float xs[4] = {x.x, x.y, x.z, x.w}, ys[4] = {y.x, y.y, y.z, y.w};
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                a[4 * h + i] = xs[i] * s * sw[f + 4 * h + i];
                b[4 * h + i] = ys[i] * s * sw[F + f + 4 * h + i];
            }
        }
    }
};

// h values (T-rounded, as the 16-bit epilogue stores them) of columns f..f+7; optionally stored.
template <class Src>
__device__ __forceinline__ void silu8(const Src& src, int f, float (&v)[8], T* hrow) {
    float a[8], b[8];
    src.load(f, a, b);
    Pack8 o;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        o.h[i].x = from_f(silu_mul(a[2 * i], b[2 * i]));
        o.h[i].y = from_f(silu_mul(a[2 * i + 1], b[2 * i + 1]));
        const float2 t = to_f2(o.h[i]);
        v[2 * i] = t.x; v[2 * i + 1] = t.y;
    }
    if (hrow) *reinterpret_cast<uint4*>(hrow + f) = o.u;
}

__device__ __forceinline__ void apply_gain(float (&v)[8], const float* gain, int f) {
    if (gain) {
#pragma unroll
        for (int i = 0; i < 8; ++i) v[i] *= gain[f + i];
    }
}

__device__ __forceinline__ float amax8(const float (&v)[8], float amax) {
#pragma unroll
    for (int i = 0; i < 8; ++i) amax = fmaxf(amax, fabsf(v[i]));
    return amax;
}

__device__ __forceinline__ void store8(unsigned char* dst, const float (&v)[8], float inv) {
    *reinterpret_cast<uint2*>(dst) = make_uint2(e4m3x4(make_float4(v[0], v[1], v[2], v[3]), inv),
                                                e4m3x4(make_float4(v[4], v[5], v[6], v[7]), inv));
}

#define KEEP 4  // 8-column pieces a thread keeps in registers between passes (at 512 threads: F <= 16384)

// One token row of n columns to fp8: pass 1 the values and their amax, pass 2 the codes. piece(f, v, first) gives
// the values of columns f..f+7 (gain applied); pass 2 asks again (first false) only where the row is too long to
// keep (KEEP pieces a thread). The barriers of block_amax also order every read of *sa before its write.
template <class Piece>
__device__ __forceinline__ void quant_row(const Piece& piece, unsigned char* aq, float* sa, int n) {
    __shared__ float scratch[32];
    const bool keep = n <= 8 * KEEP * (int)blockDim.x;
    float amax = 0.f, v[8], kv[KEEP][8];
    if (keep) {
#pragma unroll
        for (int p = 0; p < KEEP; ++p) {
            const int f = 8 * (threadIdx.x + p * blockDim.x);
            if (f >= n) break;
            piece(f, kv[p], true);
            amax = amax8(kv[p], amax);
        }
    } else {
        for (int f = 8 * threadIdx.x; f < n; f += 8 * blockDim.x) {
            piece(f, v, true);
            amax = amax8(v, amax);
        }
    }
    amax = block_amax(amax, scratch);
    if (threadIdx.x == 0) *sa = fp8_scale(amax);
    const float inv = fp8_inv(amax);
    if (keep) {
#pragma unroll
        for (int p = 0; p < KEEP; ++p) {
            const int f = 8 * (threadIdx.x + p * blockDim.x);
            if (f >= n) break;
            store8(aq + f, kv[p], inv);
        }
        return;
    }
    for (int f = 8 * threadIdx.x; f < n; f += 8 * blockDim.x) {
        piece(f, v, false);
        store8(aq + f, v, inv);
    }
}

// h's pieces (silu8, h stored in pass 1 only) times the gain
template <class Src>
struct SiluPiece {
    Src src;
    T* hrow;
    const float* gain;
    __device__ __forceinline__ void operator()(int f, float (&v)[8], bool first) const {
        silu8(src, f, v, first ? hrow : nullptr);
        apply_gain(v, gain, f);
    }
};

template <class Src>
__device__ __forceinline__ void silu_quant_row(const Src& src, unsigned char* aq, float* sa, T* h, const float* gain,
                                               int F) {
    const int m = blockIdx.x;
    const SiluPiece<Src> piece{src, h ? h + (size_t)m * F : nullptr, gain};
    quant_row(piece, aq + (size_t)m * F, sa + m, F);
}

// __launch_bounds__: at least two blocks of the launcher's (at most) 512 threads an SM with the kept pieces (64
// registers a thread; 38-44 and up to three blocks without them)
extern "C" __global__ void __launch_bounds__(512, 2)
silu_mul_quant_rows(unsigned char* __restrict__ aq, float* __restrict__ sa, T* h, const T* __restrict__ g,
                    const float* __restrict__ gain, int F, int has_gain, int write_h) {
    const FromT src{g + (size_t)blockIdx.x * 2 * F, F};
    silu_quant_row(src, aq, sa, write_h ? h : nullptr, has_gain ? gain : nullptr, F);
}

extern "C" __global__ void __launch_bounds__(512, 2)
w8a8_silu_quant_rows(unsigned char* __restrict__ aq, float* sa, T* h, const float* __restrict__ d,
                     const float* __restrict__ sw, const float* __restrict__ gain, int F, int has_gain, int write_h) {
    const FromF32 src{d + (size_t)blockIdx.x * 2 * F, sw, sa[blockIdx.x], F};  // read before the block writes it
    silu_quant_row(src, aq, sa, write_h ? h : nullptr, has_gain ? gain : nullptr, F);
}

// quant_act_fp8 (gemm_quant.cu) for perm == nullptr: a T [M, K], K % 8 == 0, rows 16-byte aligned.
__device__ __forceinline__ void act8(const T* row, int j, float (&v)[8]) {
    Pack8 p;
    p.u = *reinterpret_cast<const uint4*>(row + j);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 t = to_f2(p.h[i]);
        v[2 * i] = t.x; v[2 * i + 1] = t.y;
    }
}

struct ActPiece {  // a row of a, times the gain
    const T* row;
    const float* gain;
    __device__ __forceinline__ void operator()(int j, float (&v)[8], bool) const {
        act8(row, j, v);
        apply_gain(v, gain, j);
    }
};

extern "C" __global__ void quant_act_fp8_v(unsigned char* __restrict__ aq, float* __restrict__ sa,
                                           const T* __restrict__ a, const float* __restrict__ gain, int K,
                                           int has_gain) {
    const int m = blockIdx.x;
    quant_row(ActPiece{a + (size_t)m * K, has_gain ? gain : nullptr}, aq + (size_t)m * K, sa + m, K);
}
