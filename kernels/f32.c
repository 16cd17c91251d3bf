/* float32 kernels for the rest of a GPT-2 step (WebAssembly SIMD128): layer norm, GELU and
   attention over the KV cache. The matrix products are in int8.c.

   Each kernel mirrors a NumPy function of py/gpt2web/model.py operation by operation (same
   formula, same order of operations per element), so that its results equal NumPy's to float32
   rounding: only the order of long sums differs (NumPy sums pairwise, these sum in 4 lanes),
   and exp is a polynomial (exp4 below, within ~2 ulp of the exact value; NumPy's own float32
   exp is not correctly rounded either). tests/test_kernels.py compares each kernel with its
   NumPy original on random shapes.

   Why kernels: with int8 products in WebAssembly, what is left of a step is many small NumPy
   calls (measured in Pyodide, GPT-2 124M: layer norm ~4 ms of an 18 ms decode step, ~9 NumPy
   calls each; attention over a 480-token cache ~9 ms, and ~260 ms of a 128-token prefill).

   Memory rules as in int8.c: the module imports the host's memory, every pointer is a byte
   offset in it owned by the caller, no data segments, no C stack (scripts/build_kernels.py
   checks it). */

#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))
#define INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------------ exp */

/* exp(x) per lane, float32: exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 in
   two parts, so r is exact), exp(r) by Cephes' degree-6 polynomial for |r| <= ln 2 / 2.
   Below -87.34 (where exp leaves float32's normal range) the result is 0, above 88.72 it is
   +inf, as float32 overflows; NaN stays NaN. 2^n is built from its exponent bits in two
   halves, so every n in [-126, 128] stays a normal number. */
INLINE v128_t exp4(v128_t x) {
    const v128_t x_hi = wasm_f32x4_splat(88.72283935546875f);
    const v128_t x_lo = wasm_f32x4_splat(-87.33654022216797f);
    const v128_t xc = wasm_f32x4_pmax(wasm_f32x4_pmin(x, x_hi), x_lo);  /* NaN passes through */
    const v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(xc, wasm_f32x4_splat(1.44269504088896341f)));
    v128_t r = wasm_f32x4_sub(xc, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
    r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
    v128_t p = wasm_f32x4_splat(1.9875691500e-4f);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.3981999507e-3f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(8.3334519073e-3f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(4.1665795894e-2f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.6666665459e-1f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(5.0000001201e-1f));
    p = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, r), r), r), wasm_f32x4_splat(1.0f));
    const v128_t ni = wasm_i32x4_trunc_sat_f32x4(n);            /* in [-126, 128] */
    const v128_t n1 = wasm_i32x4_shr(ni, 1), n2 = wasm_i32x4_sub(ni, n1);
    const v128_t bias = wasm_i32x4_splat(127);
    const v128_t s1 = wasm_i32x4_shl(wasm_i32x4_add(n1, bias), 23);  /* 2^n1 */
    const v128_t s2 = wasm_i32x4_shl(wasm_i32x4_add(n2, bias), 23);  /* 2^n2 */
    v128_t y = wasm_f32x4_mul(wasm_f32x4_mul(p, s1), s2);
    y = wasm_v128_bitselect(wasm_f32x4_splat(__builtin_inff()), y, wasm_f32x4_gt(x, x_hi));
    return wasm_v128_andnot(y, wasm_f32x4_lt(x, x_lo));  /* 0 below x_lo */
}

INLINE float exp1(float x) {
    return wasm_f32x4_extract_lane(exp4(wasm_f32x4_splat(x)), 0);
}

/* ------------------------------------------------------------------ GELU */

/* y = gelu(x) for n floats (y may be x), as model.gelu:
       z2 = c * (x + 0.044715 * (x * x * x)),  c = -2 sqrt(2 / pi)
       y  = x / (1 + exp(z2))                  (= 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))) */
#define GELU_C (-1.5957691216057308f)  /* float32(-2 * sqrt(2 / pi)) */
#define GELU_A 0.044715f

INLINE v128_t gelu4(v128_t x) {
    const v128_t x3 = wasm_f32x4_mul(wasm_f32x4_mul(x, x), x);
    const v128_t z2 = wasm_f32x4_mul(wasm_f32x4_splat(GELU_C),
                                     wasm_f32x4_add(x, wasm_f32x4_mul(wasm_f32x4_splat(GELU_A), x3)));
    return wasm_f32x4_div(x, wasm_f32x4_add(wasm_f32x4_splat(1.0f), exp4(z2)));
}

EXPORT("gelu_f32")
void gelu_f32(int n, const float *x, float *y) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(y + i, gelu4(wasm_v128_load(x + i)));
    for (; i < n; i++)
        y[i] = wasm_f32x4_extract_lane(gelu4(wasm_f32x4_splat(x[i])), 0);
}

/* ------------------------------------------------------------------ layer norm */

INLINE float hsum4(v128_t v) {
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    return wasm_f32x4_extract_lane(v, 0);
}

/* Each of T rows of C floats, as model.layer_norm:
       mean = sum(x) / C,  var = sum((x - mean)^2) / C,  y = (x - mean) / sqrt(var + eps) * g + b
   y may be x. */
EXPORT("layer_norm_f32")
void layer_norm_f32(int T, int C, const float *x, const float *g, const float *b, float eps, float *y) {
    for (int t = 0; t < T; t++, x += C, y += C) {
        v128_t s = wasm_f32x4_splat(0.0f);
        int i = 0;
        for (; i + 4 <= C; i += 4)
            s = wasm_f32x4_add(s, wasm_v128_load(x + i));
        float sum = hsum4(s);
        for (; i < C; i++)
            sum += x[i];
        const float mean = sum / (float)C;
        const v128_t vm = wasm_f32x4_splat(mean);
        s = wasm_f32x4_splat(0.0f);
        for (i = 0; i + 4 <= C; i += 4) {
            const v128_t d = wasm_f32x4_sub(wasm_v128_load(x + i), vm);
            s = wasm_f32x4_add(s, wasm_f32x4_mul(d, d));
        }
        float ss = hsum4(s);
        for (; i < C; i++)
            ss += (x[i] - mean) * (x[i] - mean);
        const float sd = __builtin_sqrtf(ss / (float)C + eps);
        const v128_t vsd = wasm_f32x4_splat(sd);
        for (i = 0; i + 4 <= C; i += 4) {
            const v128_t d = wasm_f32x4_div(wasm_f32x4_sub(wasm_v128_load(x + i), vm), vsd);
            wasm_v128_store(y + i, wasm_f32x4_add(wasm_f32x4_mul(d, wasm_v128_load(g + i)), wasm_v128_load(b + i)));
        }
        for (; i < C; i++)
            y[i] = (x[i] - mean) / sd * g[i] + b[i];
    }
}

/* ------------------------------------------------------------------ attention */

/* dot(a, b) over D floats, times scale */
INLINE float dot(const float *a, const float *b, int D) {
    v128_t s = wasm_f32x4_splat(0.0f);
    int d = 0;
    for (; d + 4 <= D; d += 4)
        s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_v128_load(a + d), wasm_v128_load(b + d)));
    float r = hsum4(s);
    for (; d < D; d++)
        r += a[d] * b[d];
    return r;
}

/* scores[j] = dot(q, k_j) * scale for j < L, k_j = k + j * D; four keys at a time. */
INLINE void scores_row(const float *q, const float *k, int L, int D, float scale, float *scores) {
    const v128_t vscale = wasm_f32x4_splat(scale);
    int j = 0;
    if (D % 4 == 0) {
        for (; j + 4 <= L; j += 4) {
            const float *k0 = k + j * D, *k1 = k0 + D, *k2 = k1 + D, *k3 = k2 + D;
            v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
            for (int d = 0; d < D; d += 4) {
                const v128_t qd = wasm_v128_load(q + d);
                a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(qd, wasm_v128_load(k0 + d)));
                a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(qd, wasm_v128_load(k1 + d)));
                a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(qd, wasm_v128_load(k2 + d)));
                a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(qd, wasm_v128_load(k3 + d)));
            }
            /* the four horizontal sums at once: lanes (a0, a1, a2, a3) */
            const v128_t u0 = wasm_f32x4_add(wasm_i32x4_shuffle(a0, a1, 0, 4, 2, 6), wasm_i32x4_shuffle(a0, a1, 1, 5, 3, 7));
            const v128_t u1 = wasm_f32x4_add(wasm_i32x4_shuffle(a2, a3, 0, 4, 2, 6), wasm_i32x4_shuffle(a2, a3, 1, 5, 3, 7));
            const v128_t s = wasm_f32x4_add(wasm_i32x4_shuffle(u0, u1, 0, 1, 4, 5), wasm_i32x4_shuffle(u0, u1, 2, 3, 6, 7));
            wasm_v128_store(scores + j, wasm_f32x4_mul(s, vscale));
        }
    }
    for (; j < L; j++)
        scores[j] = dot(q, k + j * D, D) * scale;
}

INLINE float max_nan(float a, float b) {  /* max, a NaN wins (as NumPy's max) */
    return b > a || b != b ? b : a;
}

/* scores[0..L) <- softmax(scores[0..L)), as model.softmax: e = exp(s - max(s)), e / sum(e) */
INLINE void softmax_row(float *scores, int L) {
    float m = scores[0];
    for (int j = 1; j < L; j++)
        m = max_nan(m, scores[j]);
    const v128_t vm = wasm_f32x4_splat(m);
    v128_t s = wasm_f32x4_splat(0.0f);
    int j = 0;
    for (; j + 4 <= L; j += 4) {
        const v128_t e = exp4(wasm_f32x4_sub(wasm_v128_load(scores + j), vm));
        wasm_v128_store(scores + j, e);
        s = wasm_f32x4_add(s, e);
    }
    float sum = hsum4(s);
    for (; j < L; j++) {
        scores[j] = exp1(scores[j] - m);
        sum += scores[j];
    }
    const v128_t vs = wasm_f32x4_splat(sum);
    for (j = 0; j + 4 <= L; j += 4)
        wasm_v128_store(scores + j, wasm_f32x4_div(wasm_v128_load(scores + j), vs));
    for (; j < L; j++)
        scores[j] /= sum;
}

/* out[d] = sum_j p[j] * v[j * D + d] for d < D: D split into spans of 32 floats (8 vectors
   kept in registers over the whole sum), then of 4, then single floats. */
INLINE void weighted_sum(const float *p, const float *v, int L, int D, float *out) {
    int d0 = 0;
    if (D % 4 == 0) {
        for (; d0 + 32 <= D; d0 += 32) {
            v128_t a[8];
            for (int i = 0; i < 8; i++)
                a[i] = wasm_f32x4_splat(0.0f);
            const float *vj = v + d0;
            for (int j = 0; j < L; j++, vj += D) {
                const v128_t pj = wasm_f32x4_splat(p[j]);
                for (int i = 0; i < 8; i++)
                    a[i] = wasm_f32x4_add(a[i], wasm_f32x4_mul(pj, wasm_v128_load(vj + 4 * i)));
            }
            for (int i = 0; i < 8; i++)
                wasm_v128_store(out + d0 + 4 * i, a[i]);
        }
        for (; d0 + 4 <= D; d0 += 4) {
            v128_t a = wasm_f32x4_splat(0.0f);
            const float *vj = v + d0;
            for (int j = 0; j < L; j++, vj += D)
                a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_f32x4_splat(p[j]), wasm_v128_load(vj)));
            wasm_v128_store(out + d0, a);
        }
    }
    for (; d0 < D; d0++) {
        float a = 0.0f;
        for (int j = 0; j < L; j++)
            a += p[j] * v[j * D + d0];
        out[d0] = a;
    }
}

/* Causal self-attention of T new tokens over one layer's KV cache, as GPT2.attention between
   the two matrix products:

   qkv     float32 [T, 3C]      q | k | v of the new tokens (C = H * D), head h in columns h*D ..
   kc, vc  float32 [H, n_ctx, D] the layer's cache; positions < start are filled. The new
                                tokens' keys and values are written at start .. start + T - 1.
   out     float32 [T, C]       softmax(q k^T * scale, causal) v, heads side by side
   scores  float32 [n_ctx]      scratch

   Query t sits at position start + t and sees positions 0 .. start + t (NumPy masks the later
   ones with -1e10, whose exp is exactly 0: leaving them out gives the same sums). */
EXPORT("attention_f32")
void attention_f32(int T, int start, int H, int D, int n_ctx, float scale,
                   const float *qkv, float *kc, float *vc, float *out, float *scores) {
    const int C = H * D;
    for (int t = 0; t < T; t++) {
        const float *row = qkv + t * 3 * C;
        for (int h = 0; h < H; h++) {
            float *kd = kc + (h * n_ctx + start + t) * D, *vd = vc + (h * n_ctx + start + t) * D;
            const float *ks = row + C + h * D, *vs = row + 2 * C + h * D;
            for (int d = 0; d < D; d++) {
                kd[d] = ks[d];
                vd[d] = vs[d];
            }
        }
    }
    for (int h = 0; h < H; h++) {
        const float *k = kc + h * n_ctx * D, *v = vc + h * n_ctx * D;
        for (int t = 0; t < T; t++) {
            const int L = start + t + 1;
            scores_row(qkv + t * 3 * C + h * D, k, L, D, scale, scores);
            softmax_row(scores, L);
            weighted_sum(scores, v, L, D, out + t * C + h * D);
        }
    }
}

/* ------------------------------------------------------------------ softmax statistics */

/* The softmax of n logits needs their largest value m and z = sum_i exp(x_i - m) (p_i =
   exp(x_i - m) / z). Writes m to *max_out and returns z, summed in float64 (50,257 float32
   terms summed in float32 could lose ~1e-4 of z; in float64 the sum is as good as the terms,
   each within ~2 ulp of float32's exp). A NaN among the logits makes m, and z, NaN. */
EXPORT("softmax_z_f32")
double softmax_z_f32(int n, const float *x, float *max_out) {
    if (n <= 0) {
        *max_out = -__builtin_inff();
        return 0.0;
    }
    v128_t vmax = wasm_f32x4_splat(-__builtin_inff());
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vmax = wasm_f32x4_max(vmax, wasm_v128_load(x + i));  /* NaN-propagating */
    float m = max_nan(max_nan(wasm_f32x4_extract_lane(vmax, 0), wasm_f32x4_extract_lane(vmax, 1)),
                      max_nan(wasm_f32x4_extract_lane(vmax, 2), wasm_f32x4_extract_lane(vmax, 3)));
    for (; i < n; i++)
        m = max_nan(m, x[i]);
    *max_out = m;
    const v128_t vm = wasm_f32x4_splat(m);
    v128_t s0 = wasm_f64x2_splat(0.0), s1 = s0;
    for (i = 0; i + 4 <= n; i += 4) {
        const v128_t e = exp4(wasm_f32x4_sub(wasm_v128_load(x + i), vm));
        s0 = wasm_f64x2_add(s0, wasm_f64x2_promote_low_f32x4(e));
        s1 = wasm_f64x2_add(s1, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(e, e, 2, 3, 0, 1)));
    }
    s0 = wasm_f64x2_add(s0, s1);
    double z = wasm_f64x2_extract_lane(s0, 0) + wasm_f64x2_extract_lane(s0, 1);
    for (; i < n; i++)
        z += (double)exp1(x[i] - m);
    return z;
}

/* ------------------------------------------------------------------ top k */

/* The k largest of n floats, largest first, ties by lower index: ids[0..k) and their values
   vals[0..k) (caller-owned, k entries each). NaN never counts. Returns how many were found
   (k, unless fewer than k are not NaN). One pass in index order; a value enters the list only
   if it beats the k-th, strictly (so among equal values the earlier index stays), and four at a
   time are skipped with one comparison while none does. The work per entering value is O(k):
   meant for small k (the candidates view, top-k sampling). */
EXPORT("topk_f32")
int topk_f32(int n, const float *x, int k, int32_t *ids, float *vals) {
    if (k > n)
        k = n;
    if (k <= 0)
        return 0;
    int count = 0;
    int i = 0;
    for (;;) {
        if (count == k) {  /* full: skip blocks of four that cannot enter */
            const v128_t thr = wasm_f32x4_splat(vals[k - 1]);
            while (i + 4 <= n && !wasm_v128_any_true(wasm_f32x4_gt(wasm_v128_load(x + i), thr)))
                i += 4;
        }
        if (i >= n)
            break;
        const int end = i + 4 < n ? i + 4 : n;
        for (; i < end; i++) {
            const float v = x[i];
            if (v != v || (count == k && !(v > vals[k - 1])))
                continue;
            int pos = count < k ? count++ : k - 1;
            while (pos > 0 && vals[pos - 1] < v) {  /* equal values stay ahead: lower index first */
                vals[pos] = vals[pos - 1];
                ids[pos] = ids[pos - 1];
                pos--;
            }
            vals[pos] = v;
            ids[pos] = i;
        }
    }
    return count;
}
