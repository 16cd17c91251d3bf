/* int8 matrix products for GPT-2 in the browser (WebAssembly SIMD128).

   y[t, o] = sum_i x[t, i] * w[o, i]  (+ bias[o])      w[o, i] = q[o, i] * scale[o, i / group]

   x     float32 [T, n_in]      activations, one row per token
   q     int8    [n_out, n_in]  weights: row-major (ROWS, as the shards store them) or ROWS4X16
                                (blocks of 4 rows interleaved by 16 inputs, see gemm_int8)
   scale float32 [n_out]        one scale per row (group == 0), or
                 [n_out, n_in / group]   one per group of `group` inputs (group % 16 == 0)
   y     float32 [T, n_out]

   How: each token's row of x is split into two int16 parts with one scale per token,
   xs[t] = max_i |x[t, i]| / 32767:

       v  = x / xs[t]              in [-32767, 32767]
       hi = round(v)               int16
       lo = round((v - hi) * LO)   int16: v - hi is in [-0.5, 0.5], so |lo| <= 32767  (LO = 65534)
       x ~= xs[t] * (hi + lo / LO)

   hi alone is off by up to xs[t] / 2 per element (1/65534 of the row's largest |x|: enough to
   move GPT-2's probabilities by ~1e-5 when a few activations are large). With lo the remainder
   is at most xs[t] / (2 * LO), ~2.3e-10 of the largest |x|, below float32's own rounding of v
   (6e-8 of |x|): the product is as exact as float32 arithmetic on x. The int8 weights are
   widened to int16 in-register once and multiplied by both parts with `i32x4.dot_i16x8_s`
   (8 multiply-adds per instruction, exact in int32); the two sums meet in float:
   sum = float(sum q * hi) + float(sum q * lo) / LO. An int32 lane gains at most
   4 * 128 * 32767 per 16 inputs in either sum, so partial sums move to float32 every
   BLOCK = 1024 inputs (and at each group end), long before they could overflow.
   Cost: the second dot product makes a product ~1.5x slower than with hi alone at T = 1 and
   ~2x at T = 16 (measured in Chromium: these loops are bound by instruction throughput, not by
   reading the weights).

   Memory: the module imports the host's memory (Pyodide's heap) and every pointer is a byte
   offset in it, owned by the caller (NumPy arrays). There are no data segments and no C stack
   (every local lives in a wasm local): the module never writes outside the arrays it is handed.
   scripts/build_kernels.py checks this on every build.
*/

#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))
#define INLINE static inline __attribute__((always_inline))
#define NOINLINE static __attribute__((noinline))

enum { ROWS = 0, ROWS4X16 = 1 };  /* weight layouts */
enum { BLOCK = 1024 };            /* inputs per int32 partial sum (see above) */
enum { PANEL = 32768 };           /* bytes of weights kept in cache while a tile of tokens passes */
#define LO 65534.0f                /* lo's unit: 1 / LO of hi's (see above) */

/* ------------------------------------------------------------------ activations */

INLINE float max_keep_nan(float a, float b) {  /* a NaN in x must reach y */
    return b > a || b != b ? b : a;
}

/* x[n] -> hi[n_pad], lo[n_pad] (int16, zero-padded to n_pad); returns the scale xs with
   x ~= xs * (hi + lo / LO), see the top of the file. */
INLINE float quantize_row(const float *x, int16_t *hi, int16_t *lo, int n, int n_pad) {
    v128_t vmax = wasm_f32x4_splat(0.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vmax = wasm_f32x4_max(vmax, wasm_f32x4_abs(wasm_v128_load(x + i)));  /* NaN-propagating */
    float amax = max_keep_nan(max_keep_nan(wasm_f32x4_extract_lane(vmax, 0), wasm_f32x4_extract_lane(vmax, 1)),
                              max_keep_nan(wasm_f32x4_extract_lane(vmax, 2), wasm_f32x4_extract_lane(vmax, 3)));
    for (; i < n; i++)
        amax = max_keep_nan(amax, __builtin_fabsf(x[i]));
    /* An all-zero row quantizes to zeros; with a NaN or an infinity, xs (and so y) is NaN/inf. */
    const float inv = amax > 0.0f ? 32767.0f / amax : 0.0f;
    const v128_t vinv = wasm_f32x4_splat(inv), vlo = wasm_f32x4_splat(LO);
    i = 0;
    for (; i + 8 <= n; i += 8) {
        const v128_t va = wasm_f32x4_mul(wasm_v128_load(x + i), vinv);
        const v128_t vb = wasm_f32x4_mul(wasm_v128_load(x + i + 4), vinv);
        const v128_t ha = wasm_f32x4_nearest(va), hb = wasm_f32x4_nearest(vb);
        /* v - round(v) is exact in float32; times LO it stays within +-32767 */
        const v128_t la = wasm_f32x4_nearest(wasm_f32x4_mul(wasm_f32x4_sub(va, ha), vlo));
        const v128_t lb = wasm_f32x4_nearest(wasm_f32x4_mul(wasm_f32x4_sub(vb, hb), vlo));
        wasm_v128_store(hi + i, wasm_i16x8_narrow_i32x4(wasm_i32x4_trunc_sat_f32x4(ha),
                                                        wasm_i32x4_trunc_sat_f32x4(hb)));
        wasm_v128_store(lo + i, wasm_i16x8_narrow_i32x4(wasm_i32x4_trunc_sat_f32x4(la),
                                                        wasm_i32x4_trunc_sat_f32x4(lb)));
    }
    for (; i < n; i++) {
        const float v = x[i] * inv;
        const float h = __builtin_rintf(v);
        const float l = __builtin_rintf((v - h) * LO);
        hi[i] = (int16_t)(h == h ? h : 0.0f);
        lo[i] = (int16_t)(l == l ? l : 0.0f);
    }
    for (; i < n_pad; i++)
        hi[i] = lo[i] = 0;
    return amax / 32767.0f;
}

/* ------------------------------------------------------------------ the tile */

INLINE float hsum(v128_t acc) {  /* int32x4 -> float, summed in float (4 lanes may exceed int32) */
    v128_t f = wasm_f32x4_convert_i32x4(acc);
    f = wasm_f32x4_add(f, wasm_i32x4_shuffle(f, f, 2, 3, 0, 1));
    f = wasm_f32x4_add(f, wasm_i32x4_shuffle(f, f, 1, 0, 3, 2));
    return wasm_f32x4_extract_lane(f, 0);
}

/* Rows o .. o+R-1 of the weights times tokens t .. t+TT-1 of xq: input k of token t has its hi
   part at xq[t * 2 * n_pad + k] and its lo part n_pad further. R and TT are constants after
   inlining, so the accumulators live in wasm locals, not in memory. Byte (r, k) of the tile's
   weights sits at q + r * rstride + (k / 16) * cstride + k % 16: rstride = n_in, cstride = 16
   in the row-major layout, rstride = 16, cstride = 64 in ROWS4X16 (see gemm_int8). */
INLINE void tile(const int R, const int TT,
                 const int8_t *q, int rstride, int cstride, int n_in, int n_main,
                 const float *scale, int group, int n_groups,
                 const int16_t *xq, int n_pad, const float *xs,
                 const float *bias, float *y, int n_out) {
    float sum[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < TT; t++)
            sum[r][t] = 0.0f;
    const int span = group ? group : n_main;  /* inputs sharing one scale */
    for (int g0 = 0, g = 0; g0 < n_main; g0 += span, g++) {
        float part[4][4];
        for (int r = 0; r < R; r++)
            for (int t = 0; t < TT; t++)
                part[r][t] = 0.0f;
        for (int b0 = g0; b0 < g0 + span; b0 += BLOCK) {
            const int b1 = b0 + BLOCK < g0 + span ? b0 + BLOCK : g0 + span;
            v128_t acc[4][4], acc_lo[4][4];  /* sums of q * hi and of q * lo */
            for (int r = 0; r < R; r++)
                for (int t = 0; t < TT; t++)
                    acc[r][t] = acc_lo[r][t] = wasm_i32x4_splat(0);
            const int8_t *qk = q + (b0 / 16) * cstride;
            for (int k = b0; k < b1; k += 16, qk += cstride) {
                v128_t h0[4], h1[4], l0[4], l1[4];  /* inputs k .. k+7 and k+8 .. k+15 */
                for (int t = 0; t < TT; t++) {
                    const int16_t *xt = xq + t * 2 * n_pad + k;
                    h0[t] = wasm_v128_load(xt);
                    h1[t] = wasm_v128_load(xt + 8);
                    l0[t] = wasm_v128_load(xt + n_pad);
                    l1[t] = wasm_v128_load(xt + n_pad + 8);
                }
                for (int r = 0; r < R; r++) {
                    const v128_t w = wasm_v128_load(qk + r * rstride);
                    const v128_t w0 = wasm_i16x8_extend_low_i8x16(w);
                    const v128_t w1 = wasm_i16x8_extend_high_i8x16(w);
                    for (int t = 0; t < TT; t++) {
                        acc[r][t] = wasm_i32x4_add(acc[r][t], wasm_i32x4_add(
                            wasm_i32x4_dot_i16x8(w0, h0[t]), wasm_i32x4_dot_i16x8(w1, h1[t])));
                        acc_lo[r][t] = wasm_i32x4_add(acc_lo[r][t], wasm_i32x4_add(
                            wasm_i32x4_dot_i16x8(w0, l0[t]), wasm_i32x4_dot_i16x8(w1, l1[t])));
                    }
                }
            }
            for (int r = 0; r < R; r++)
                for (int t = 0; t < TT; t++)
                    part[r][t] += hsum(acc[r][t]) + hsum(acc_lo[r][t]) / LO;
        }
        for (int r = 0; r < R; r++)
            for (int t = 0; t < TT; t++)
                sum[r][t] += group ? part[r][t] * scale[r * n_groups + g] : part[r][t];
    }
    for (int k = n_main; k < n_in; k++)  /* the last n_in % 16 inputs (row-major, per-row scales) */
        for (int r = 0; r < R; r++)
            for (int t = 0; t < TT; t++) {
                const int32_t wk = q[r * rstride + k];
                const int32_t hk = xq[t * 2 * n_pad + k], lk = xq[t * 2 * n_pad + n_pad + k];
                sum[r][t] += (float)(wk * hk) + (float)(wk * lk) / LO;
            }
    for (int r = 0; r < R; r++) {
        for (int t = 0; t < TT; t++) {
            float v = sum[r][t] * xs[t];
            if (!group)
                v *= scale[r];
            if (bias)
                v += bias[r];
            y[t * n_out + r] = v;
        }
    }
}

/* Rows [o0, o1) for TT tokens: blocks of R rows (strides as in tile) while they fit below o_blk,
   then single rows, row-major. One function per shape gemm_int8 uses, so that clang optimizes
   each with R and TT constant from the start and keeps every accumulator in wasm locals (with
   the shapes inlined into one generic function, clang 14 left the two-part sums in memory: on
   a C stack, which scripts/build_kernels.py rejects). */
#define ROWS_SHAPE(R, TT)                                                                         \
    NOINLINE void rows_##R##x##TT(int rstride, int cstride, int o0, int o1, int o_blk,          \
                                  const int8_t *q, int n_in, int n_main,                        \
                                  const float *scale, int group, int n_groups,                  \
                                  const int16_t *xq, int n_pad, const float *xs,                \
                                  const float *bias, float *y, int n_out) {                     \
        const int sstride = group ? n_groups : 1;                                               \
        int o = o0;                                                                             \
        for (; R > 1 && o + R <= o1 && o + R <= o_blk; o += R)                                  \
            tile(R, TT, q + o * n_in, rstride, cstride, n_in, n_main, scale + o * sstride,     \
                 group, n_groups, xq, n_pad, xs, bias ? bias + o : 0, y + o, n_out);            \
        for (; o < o1; o++)                                                                     \
            tile(1, TT, q + o * n_in, n_in, 16, n_in, n_main, scale + o * sstride,             \
                 group, n_groups, xq, n_pad, xs, bias ? bias + o : 0, y + o, n_out);            \
    }
ROWS_SHAPE(4, 2)  /* ROWS4X16, pairs of tokens: 4 rows x 2 tokens, 8 accumulator pairs */
ROWS_SHAPE(4, 1)  /* ROWS4X16, one token: one sequential stream per block of 4 rows */
ROWS_SHAPE(2, 2)  /* ROWS, 2 tokens at a time: 2 rows x 2 tokens (2 x 4 spilled to a C stack) */
ROWS_SHAPE(1, 1)  /* ROWS, one token: one row at a time, a single sequential stream */

/* ------------------------------------------------------------------ exports */

/* Bytes of int16 scratch gemm_int8 needs for T tokens of n_in inputs: two parts (hi, lo) per
   token, each padded to a multiple of 16 inputs. */
EXPORT("scratch_bytes")
int scratch_bytes(int T, int n_in) {
    return T * 2 * ((n_in + 15) & ~15) * 2;
}

/* y = x @ w.T (+ bias) for T tokens, see the top of the file.

   layout ROWS (0):     q is row-major [n_out, n_in], as in the shards.
   layout ROWS4X16 (1): n_in % 16 == 0; rows come in blocks of 4, each block stored chunk by chunk:
                        byte q[o, i] sits at  (o/4)*4*n_in + (i/16)*64 + (o%4)*16 + i%16
                        for o < n4 = n_out & ~3; the last n_out % 4 rows stay row-major.
                        Same bytes, one sequential stream per block: a decode step (T = 1) reads
                        the weights ~1.5x faster than from 4 (or 2) separate rows.
   bias: float32 [n_out], or 0 for none.
   xq, xs: caller-owned scratch, scratch_bytes(T, n_in) bytes and float32 [T]. Token t's hi
           part goes to xq[t * 2 * n_pad ...], its lo part to xq[t * 2 * n_pad + n_pad ...]. */
EXPORT("gemm_int8")
void gemm_int8(int T, int n_in, int n_out,
               const float *x, const int8_t *q, const float *scale, int group, int layout,
               const float *bias, float *y, int16_t *xq, float *xs) {
    const int n_pad = (n_in + 15) & ~15;
    const int n_main = n_in & ~15;
    const int n_groups = group ? n_in / group : 1;
    const int n4 = n_out & ~3;
    for (int t = 0; t < T; t++)
        xs[t] = quantize_row(x + t * n_in, xq + t * 2 * n_pad, xq + t * 2 * n_pad + n_pad, n_in, n_pad);
    /* With several tokens, a panel of rows (~PANEL bytes of weights) stays in cache while
       every token passes over it; one token makes a single pass. */
    int panel = n_out;
    if (T > 1) {
        panel = (PANEL / (n_in > 0 ? n_in : 1)) & ~3;
        if (panel < 4)
            panel = 4;
    }
    for (int o0 = 0; o0 < n_out; o0 += panel) {
        const int o1 = o0 + panel < n_out ? o0 + panel : n_out;
        int t = 0;
        if (layout == ROWS4X16) {  /* blocks of 4 rows below n4, interleaved (see above) */
            for (; t + 2 <= T; t += 2)
                rows_4x2(16, 64, o0, o1, n4, q, n_in, n_main, scale, group, n_groups,
                         xq + t * 2 * n_pad, n_pad, xs + t, bias, y + t * n_out, n_out);
            for (; t < T; t++)
                rows_4x1(16, 64, o0, o1, n4, q, n_in, n_main, scale, group, n_groups,
                         xq + t * 2 * n_pad, n_pad, xs + t, bias, y + t * n_out, n_out);
        } else {
            for (; t + 2 <= T; t += 2)
                rows_2x2(n_in, 16, o0, o1, o1, q, n_in, n_main, scale, group, n_groups,
                         xq + t * 2 * n_pad, n_pad, xs + t, bias, y + t * n_out, n_out);
            for (; t < T; t++)
                rows_1x1(n_in, 16, o0, o1, o1, q, n_in, n_main, scale, group, n_groups,
                         xq + t * 2 * n_pad, n_pad, xs + t, bias, y + t * n_out, n_out);
        }
    }
}

/* Reorder a row-major int8 matrix [n_out, n_in] (n_in % 16 == 0) into ROWS4X16, src -> dst. */
EXPORT("pack_rows4x16")
void pack_rows4x16(const int8_t *src, int8_t *dst, int n_out, int n_in) {
    const int n4 = n_out & ~3;
    for (int o = 0; o < n4; o += 4)
        for (int r = 0; r < 4; r++)
            for (int i = 0; i < n_in; i += 16)
                wasm_v128_store(dst + o * n_in + (i / 16) * 64 + r * 16,
                                wasm_v128_load(src + (o + r) * n_in + i));
    for (int k = n4 * n_in; k < n_out * n_in; k++)
        dst[k] = src[k];
}
