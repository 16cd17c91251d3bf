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
   widened to int16 as they are loaded (`i16x8.load8x8_s`) and multiplied by both parts with
   `i32x4.dot_i16x8_s` (8 multiply-adds per instruction, exact in int32). The two sums meet in
   float64, where int32 lanes convert and add exactly: sum = (sum q * hi) + (sum q * lo) / LO,
   rounded to float32 once per output. An int32 lane gains at most 4 * 128 * 32767 per
   16 inputs in either sum, so partial sums move to float64 every BLOCK = 1024 inputs (and at
   each group end), long before they could overflow. (With the lanes summed in float32
   instead, the worst error on random shapes was up to 1.7x larger, for no measurable speed.)

   Scratch layout: the parts go to xq chunk by chunk, tokens in pairs. Chunk c (inputs 16c ..
   16c+15) of token t is 32 int16, 16 hi parts then 16 lo parts, at int16 offset
       (t / 2) * pair + c * 64 + (t % 2) * 32        pair = 64 * ceil(n_in / 16)
   (a lone last token's chunks are 32 apart). A tile of 2 tokens reads one contiguous stream,
   every load at a constant offset from one pointer, which V8 folds into the load instruction;
   with one row of scratch per token, each load cost an extra address computation. (All T
   tokens side by side instead of pairs would put a tile's chunks T * 64 bytes apart, 8 KB at
   T = 128, all in one L1 cache set: measured ~15% slower at T = 128.)

   Tiles: 16 inputs of one token need 4 dot products and 4 adds (hi and lo, 8 inputs each);
   that is the floor. What a tile adds on top are loads: V8 does not fold a load into
   `i32x4.dot_i16x8_s` (nor has fused multiply-adds), and on x64 it allocates 15 xmm registers.
   Per 16 inputs, an R x TT tile holds 2 * R * TT accumulators and loads 2 widened weight
   vectors per row and 4 activation vectors per token; with 15 registers the cheapest is
   2 rows x 2 tokens with the widened weights of both rows held (8 accumulators + 4 weights + 2):
   11 instructions per row, token and 16 inputs where the floor is 8. Decode (T = 1) uses
   4 rows x 1 token with the token's 4 activation vectors held (one sequential weight stream).
   Measured in Chromium 156 on 2 shared AMD EPYC (Zen 4) cores (scripts/bench_kernels.py, GPT-2
   124M shapes, weights streamed from memory, medians of 15 rounds): 17-18.5 GMAC/s at
   T = 16..128, 11-17% more than the previous tile (4 rows x 2 tokens on one row of scratch
   per token, whose accumulators V8 spilled to memory), and 3-16% more at T = 1 (the LM head
   13%). In Pyodide a 16-token 768x2304 product takes 1.56 ms instead of 1.81. The same 2 x 2
   loop in native x64 code, where loads fold into the multiplies, runs ~10% faster still: that
   is what V8's code leaves on the table, not the tile.
   Cost of the lo part: the second dot product makes a product ~1.5x slower than with hi alone
   at T = 1 and ~2x at T = 16 (these loops are bound by instruction throughput, not by reading
   the weights).

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
enum { PANEL = 65536 };           /* bytes of weights kept in cache while the tokens pass */
enum { CHUNK = 32 };              /* int16 per token and 16 inputs in xq: 16 hi, then 16 lo */
#define LO 65534.0f                /* lo's unit: 1 / LO of hi's (see above) */

/* ------------------------------------------------------------------ activations */

INLINE float max_keep_nan(float a, float b) {  /* a NaN in x must reach y */
    return b > a || b != b ? b : a;
}

/* Inputs a, b (float32x4 each) times inv -> their hi parts to hi[0..7], lo parts to lo[0..7]. */
INLINE void split8(v128_t a, v128_t b, v128_t vinv, int16_t *hi, int16_t *lo) {
    const v128_t vlo = wasm_f32x4_splat(LO);
    const v128_t va = wasm_f32x4_mul(a, vinv), vb = wasm_f32x4_mul(b, vinv);
    const v128_t ha = wasm_f32x4_nearest(va), hb = wasm_f32x4_nearest(vb);
    /* v - round(v) is exact in float32; times LO it stays within +-32767 */
    const v128_t la = wasm_f32x4_nearest(wasm_f32x4_mul(wasm_f32x4_sub(va, ha), vlo));
    const v128_t lb = wasm_f32x4_nearest(wasm_f32x4_mul(wasm_f32x4_sub(vb, hb), vlo));
    /* trunc_sat turns a NaN into 0: a NaN row reaches y through xs instead */
    wasm_v128_store(hi, wasm_i16x8_narrow_i32x4(wasm_i32x4_trunc_sat_f32x4(ha), wasm_i32x4_trunc_sat_f32x4(hb)));
    wasm_v128_store(lo, wasm_i16x8_narrow_i32x4(wasm_i32x4_trunc_sat_f32x4(la), wasm_i32x4_trunc_sat_f32x4(lb)));
}

/* x[n] -> the token's chunks in xq (chunk c at xq + c * cs: 16 hi, then 16 lo parts; the last
   chunk zero-padded); returns the scale xs with x ~= xs * (hi + lo / LO), see the top. */
INLINE float quantize_row(const float *x, int16_t *xq, int cs, int n) {
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
    const v128_t vinv = wasm_f32x4_splat(inv);
    for (i = 0; i + 16 <= n; i += 16, xq += cs) {
        split8(wasm_v128_load(x + i), wasm_v128_load(x + i + 4), vinv, xq, xq + 16);
        split8(wasm_v128_load(x + i + 8), wasm_v128_load(x + i + 12), vinv, xq + 8, xq + 24);
    }
    if (i < n) {  /* the last n % 16 inputs, zero-padded (no loop, no array: nothing on a C stack) */
        const float *p = x + i;
        const int m = n - i;
#define X(j) (j < m ? p[j] : 0.0f)
        split8(wasm_f32x4_make(X(0), X(1), X(2), X(3)), wasm_f32x4_make(X(4), X(5), X(6), X(7)),
               vinv, xq, xq + 16);
        split8(wasm_f32x4_make(X(8), X(9), X(10), X(11)), wasm_f32x4_make(X(12), X(13), X(14), 0.0f),
               vinv, xq + 8, xq + 24);
#undef X
    }
    return amax / 32767.0f;
}

/* ------------------------------------------------------------------ the tile */

/* EACH(v, N, stmt): stmt for v = 0 .. N-1 (N <= 4, a constant), unrolled by the preprocessor.
   clang 14 unrolls such loops itself only up to some size; past it, it left a tile's
   accumulators in memory (on a C stack, which scripts/build_kernels.py rejects). */
#define EACH(v, N, ...)                                 \
    do {                                                \
        if (0 < (N)) { const int v = 0; __VA_ARGS__ }   \
        if (1 < (N)) { const int v = 1; __VA_ARGS__ }   \
        if (2 < (N)) { const int v = 2; __VA_ARGS__ }   \
        if (3 < (N)) { const int v = 3; __VA_ARGS__ }   \
    } while (0)

/* The n < 16 bytes at p, zero-extended to 16; reads nothing past p + n (no loop, so that the
   tile's rows and tokens still unroll). */
INLINE v128_t load_partial(const int8_t *p, int n) {
#define BYTE(i) (i < n ? (uint64_t)(uint8_t)p[i] << (8 * (i % 8)) : 0)
    const uint64_t lo = BYTE(0) | BYTE(1) | BYTE(2) | BYTE(3) | BYTE(4) | BYTE(5) | BYTE(6) | BYTE(7);
    const uint64_t hi = BYTE(8) | BYTE(9) | BYTE(10) | BYTE(11) | BYTE(12) | BYTE(13) | BYTE(14);
#undef BYTE
    return wasm_i64x2_make((int64_t)lo, (int64_t)hi);
}

/* How a tile goes through one chunk (16 inputs), see the top of the file:
   ONE_ROW:    per row, its widened weights held, each activation loaded where it is used
               (row-major weights: the odd shapes);
   TOKENS_HELD: the tokens' 16 hi and 16 lo parts held, rows widened one after the other
               (one token, 4 rows: decode);
   ROWS_HELD:  the rows' widened weights held, each activation vector loaded once and used
               by every row (2 rows x 2 tokens: prefill). */
enum { ONE_ROW, TOKENS_HELD, ROWS_HELD };

INLINE void chunk(const int R, const int TT, const int HOW, const int8_t *qk, int rstride,
                  const int16_t *xk, v128_t acc[4][4], v128_t acc_lo[4][4]) {
    if (HOW == ONE_ROW) {
        EACH(r, R,
            const v128_t w0 = wasm_i16x8_load8x8(qk + r * rstride);
            const v128_t w1 = wasm_i16x8_load8x8(qk + r * rstride + 8);
            EACH(t, TT,
                const int16_t *xt = xk + t * CHUNK;
                acc[r][t] = wasm_i32x4_add(acc[r][t], wasm_i32x4_dot_i16x8(w0, wasm_v128_load(xt)));
                acc[r][t] = wasm_i32x4_add(acc[r][t], wasm_i32x4_dot_i16x8(w1, wasm_v128_load(xt + 8)));
                acc_lo[r][t] = wasm_i32x4_add(acc_lo[r][t], wasm_i32x4_dot_i16x8(w0, wasm_v128_load(xt + 16)));
                acc_lo[r][t] = wasm_i32x4_add(acc_lo[r][t], wasm_i32x4_dot_i16x8(w1, wasm_v128_load(xt + 24)));););
    } else if (HOW == TOKENS_HELD) {
        v128_t h0[4], h1[4], l0[4], l1[4];
        EACH(t, TT,
            const int16_t *xt = xk + t * CHUNK;
            h0[t] = wasm_v128_load(xt);
            h1[t] = wasm_v128_load(xt + 8);
            l0[t] = wasm_v128_load(xt + 16);
            l1[t] = wasm_v128_load(xt + 24););
        EACH(r, R,
            const v128_t w0 = wasm_i16x8_load8x8(qk + r * rstride);
            const v128_t w1 = wasm_i16x8_load8x8(qk + r * rstride + 8);
            EACH(t, TT,
                acc[r][t] = wasm_i32x4_add(acc[r][t], wasm_i32x4_dot_i16x8(w0, h0[t]));
                acc[r][t] = wasm_i32x4_add(acc[r][t], wasm_i32x4_dot_i16x8(w1, h1[t]));
                acc_lo[r][t] = wasm_i32x4_add(acc_lo[r][t], wasm_i32x4_dot_i16x8(w0, l0[t]));
                acc_lo[r][t] = wasm_i32x4_add(acc_lo[r][t], wasm_i32x4_dot_i16x8(w1, l1[t]));););
    } else {
        v128_t w0[4], w1[4];
        EACH(r, R,
            w0[r] = wasm_i16x8_load8x8(qk + r * rstride);
            w1[r] = wasm_i16x8_load8x8(qk + r * rstride + 8););
        EACH(t, TT,
            const int16_t *xt = xk + t * CHUNK;
            const v128_t h0 = wasm_v128_load(xt);
            EACH(r, R, acc[r][t] = wasm_i32x4_add(acc[r][t], wasm_i32x4_dot_i16x8(w0[r], h0)););
            const v128_t h1 = wasm_v128_load(xt + 8);
            EACH(r, R, acc[r][t] = wasm_i32x4_add(acc[r][t], wasm_i32x4_dot_i16x8(w1[r], h1)););
            const v128_t l0 = wasm_v128_load(xt + 16);
            EACH(r, R, acc_lo[r][t] = wasm_i32x4_add(acc_lo[r][t], wasm_i32x4_dot_i16x8(w0[r], l0)););
            const v128_t l1 = wasm_v128_load(xt + 24);
            EACH(r, R, acc_lo[r][t] = wasm_i32x4_add(acc_lo[r][t], wasm_i32x4_dot_i16x8(w1[r], l1));););
    }
}

/* int32x4 -> float64x2 (lanes 0 + 2, 1 + 3), exact. */
INLINE v128_t pair_sum(v128_t a) {
    return wasm_f64x2_add(wasm_f64x2_convert_low_i32x4(a),
                          wasm_f64x2_convert_low_i32x4(wasm_i32x4_shuffle(a, a, 2, 3, 2, 3)));
}

/* Rows o .. o+R-1 of the weights times tokens t .. t+TT-1 (R, TT <= 4, constants after
   inlining, so the accumulators live in wasm locals). Byte (r, k) of the tile's weights sits at
   q + r * rstride + (k / 16) * cstride + k % 16: rstride = n_in, cstride = 16 in the row-major
   layout, rstride = 16, cstride = 64 in ROWS4X16 (see gemm_int8). xq points at the first
   token's first chunk, xcs int16 from one chunk to the next, the tokens CHUNK apart (see the
   top of the file). TAIL: handle n_in % 16 (row-major weights with per-row scales only). */
INLINE void tile(const int R, const int TT, const int HOW, const int TAIL,
                 const int8_t *q, int rstride, int cstride, int n_in, int n_main,
                 const float *scale, int group, int n_groups,
                 const int16_t *xq, int xcs, const float *xs,
                 const float *bias, float *y, int n_out) {
    v128_t sum[4][4];  /* float64x2 per row and token, its two lanes added at the end */
    EACH(r, R, EACH(t, TT, sum[r][t] = wasm_f64x2_splat(0.0);););
    const v128_t inv_lo = wasm_f64x2_splat(1.0 / LO);  /* 1 / 65534 to 1e-16: no rounding that shows */
    const int span = group ? group : n_main;  /* inputs sharing one scale */
    for (int g0 = 0, g = 0;; g0 += span, g++) {
        for (int b0 = g0;; b0 += BLOCK) {
            const int b1 = b0 + BLOCK < g0 + span ? b0 + BLOCK : g0 + span;
            v128_t acc[4][4], acc_lo[4][4];  /* sums of q * hi and of q * lo */
            EACH(r, R, EACH(t, TT, acc[r][t] = acc_lo[r][t] = wasm_i32x4_splat(0);););
            const int8_t *qk = q + (b0 / 16) * cstride;
            const int16_t *xk = xq + (b0 / 16) * xcs;
            for (int k = b0; k < b1; k += 16, qk += cstride, xk += xcs) {
                /* An empty asm that "changes" the two pointers: without it, clang rebases the
                   loop's loads on a pointer to their end, and wasm load offsets cannot be
                   negative, so V8 got an address computation per load. No instruction. */
                __asm__("" : "+r"(xk), "+r"(qk));
                chunk(R, TT, HOW, qk, rstride, xk, acc, acc_lo);
            }
            if (TAIL && b1 == n_main && n_main < n_in) {  /* the activations are zero-padded */
                const int16_t *xc = xq + (n_main / 16) * xcs;
                EACH(r, R,
                    const v128_t w = load_partial(q + r * rstride + n_main, n_in - n_main);
                    const v128_t w0 = wasm_i16x8_extend_low_i8x16(w), w1 = wasm_i16x8_extend_high_i8x16(w);
                    EACH(t, TT,
                        const int16_t *xt = xc + t * CHUNK;
                        acc[r][t] = wasm_i32x4_add(acc[r][t], wasm_i32x4_add(
                            wasm_i32x4_dot_i16x8(w0, wasm_v128_load(xt)), wasm_i32x4_dot_i16x8(w1, wasm_v128_load(xt + 8))));
                        acc_lo[r][t] = wasm_i32x4_add(acc_lo[r][t], wasm_i32x4_add(
                            wasm_i32x4_dot_i16x8(w0, wasm_v128_load(xt + 16)), wasm_i32x4_dot_i16x8(w1, wasm_v128_load(xt + 24))));););
            }
            EACH(r, R, EACH(t, TT,
                const v128_t f = wasm_f64x2_add(pair_sum(acc[r][t]), wasm_f64x2_mul(pair_sum(acc_lo[r][t]), inv_lo));
                sum[r][t] = wasm_f64x2_add(sum[r][t], group ?
                    wasm_f64x2_mul(f, wasm_f64x2_splat(scale[r * n_groups + g])) : f);););
            if (b1 >= g0 + span)
                break;
        }
        if (g0 + span >= n_main)
            break;
    }
    EACH(r, R, EACH(t, TT,
        float v = (float)(wasm_f64x2_extract_lane(sum[r][t], 0) + wasm_f64x2_extract_lane(sum[r][t], 1)) * xs[t];
        if (!group)
            v *= scale[r];
        if (bias)
            v += bias[r];
        y[t * n_out + r] = v;););
}

/* Rows [o0, o1) for TT tokens, R rows at a time (strides as in tile; in ROWS4X16, o0 and o1 are
   multiples of 4 and R divides 4), then single rows with TAIL. One function per shape, so that
   clang optimizes each with R and TT constant from the start. */
#define ROWS_SHAPE(name, R, TT, HOW, TAIL)                                                      \
    NOINLINE void name(int rstride, int cstride, int o0, int o1,                                \
                       const int8_t *q, int n_in, int n_main,                                   \
                       const float *scale, int group, int n_groups,                             \
                       const int16_t *xq, int xcs, const float *xs,                             \
                       const float *bias, float *y, int n_out) {                                \
        const int sstride = group ? n_groups : 1;                                               \
        int o = o0;                                                                             \
        for (; o + R <= o1; o += R)                                                             \
            tile(R, TT, HOW, TAIL, q + (o & ~3) * n_in + (o & 3) * rstride, rstride, cstride,   \
                 n_in, n_main, scale + o * sstride, group, n_groups, xq, xcs, xs,               \
                 bias ? bias + o : 0, y + o, n_out);                                            \
        if (R > 1 && TAIL)                                                                      \
            for (; o < o1; o++)                                                                 \
                tile(1, TT, ONE_ROW, TAIL, q + o * n_in, rstride, cstride, n_in, n_main,        \
                     scale + o * sstride, group, n_groups, xq, xcs, xs,                         \
                     bias ? bias + o : 0, y + o, n_out);                                        \
    }
ROWS_SHAPE(rows_2x2, 2, 2, ROWS_HELD, 0)    /* ROWS4X16, pairs of tokens */
ROWS_SHAPE(rows_4x1, 4, 1, TOKENS_HELD, 0)  /* ROWS4X16, one token: one stream per block */
ROWS_SHAPE(rows_r2x2, 2, 2, ONE_ROW, 1)     /* row-major, pairs of tokens */
ROWS_SHAPE(rows_r1x1, 1, 1, ONE_ROW, 1)     /* row-major, one token */

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
   xq, xs: caller-owned scratch, scratch_bytes(T, n_in) bytes and float32 [T]; xq gets the
           tokens' hi and lo parts chunk by chunk, in pairs of tokens (see the top of the file). */
EXPORT("gemm_int8")
void gemm_int8(int T, int n_in, int n_out,
               const float *x, const int8_t *q, const float *scale, int group, int layout,
               const float *bias, float *y, int16_t *xq, float *xs) {
    const int n_main = n_in & ~15;
    const int n_groups = group ? n_in / group : 1;
    const int n4 = n_out & ~3;
    const int pair = ((n_in + 15) >> 4) * 2 * CHUNK;  /* int16 per pair of tokens in xq */
    for (int t = 0; t < T; t++)  /* a pair's chunks 2 * CHUNK apart, a lone last token's CHUNK */
        xs[t] = quantize_row(x + t * n_in, xq + (t >> 1) * pair + (t & 1) * CHUNK,
                             (t | 1) < T ? 2 * CHUNK : CHUNK, n_in);
    /* With several tokens, a panel of rows (~PANEL bytes of weights) stays in cache while
       every token passes over it; one token makes a single pass. */
    int panel = n_out;
    if (T > 1) {
        panel = (PANEL / (n_in > 0 ? n_in : 1)) & ~3;
        if (panel < 4)
            panel = 4;
    }
#define ROWS_CALL(fn, rstride, cstride, o0, o1)                                                 \
    fn(rstride, cstride, o0, o1, q, n_in, n_main, scale, group, n_groups,                       \
       xq + (t >> 1) * pair, (t | 1) < T ? 2 * CHUNK : CHUNK, xs + t, bias, y + t * n_out, n_out)
    for (int o0 = 0; o0 < n_out; o0 += panel) {
        const int o1 = o0 + panel < n_out ? o0 + panel : n_out;
        int t = 0;
        if (layout == ROWS4X16) {
            const int o1b = o1 < n4 ? o1 : n4;  /* blocks of 4 rows below n4 (see above) */
            for (; t + 2 <= T; t += 2)
                ROWS_CALL(rows_2x2, 16, 64, o0, o1b);
            for (; t < T; t++)
                ROWS_CALL(rows_4x1, 16, 64, o0, o1b);
            if (o1 > n4) {  /* the last n_out % 4 rows, row-major */
                const int o0r = o0 > n4 ? o0 : n4;
                for (t = 0; t + 2 <= T; t += 2)
                    ROWS_CALL(rows_r2x2, n_in, 16, o0r, o1);
                for (; t < T; t++)
                    ROWS_CALL(rows_r1x1, n_in, 16, o0r, o1);
            }
        } else {
            for (; t + 2 <= T; t += 2)
                ROWS_CALL(rows_r2x2, n_in, 16, o0, o1);
            for (; t < T; t++)
                ROWS_CALL(rows_r1x1, n_in, 16, o0, o1);
        }
    }
#undef ROWS_CALL
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
