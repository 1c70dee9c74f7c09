"""The C source of the compiled forest (``fraudops.models.compiled`` compiles it per model).

Kept as a Python string so that it ships with the package as code (no package data to declare).

fraudops compiled forest: an XGBoost binary:logistic forest, evaluated a block of rows at a time.

The generated header before this file defines the forest as constants:
  F features, T trees, D depth of the deepest tree (every tree is padded to a complete tree of
  depth D: node k's children are 2k+1 (left) and 2k+2 (right), leaves 2^D-1 .. 2^(D+1)-2),
  CUTS[F][256]  each feature's distinct split thresholds, sorted, padded with +inf,
  STEPS[F]      binary-search steps covering that feature's thresholds (2^STEPS-1 >= count),
  FEAT[T][N]    the feature of each internal node (N = 2^D-1), uint16,
  TBIN[T][N]    1 + the rank of the node's threshold among its feature's CUTS,
  REAL[T][N]    0 for padding nodes (below a leaf of the original tree: both sides agree),
  LEAF[T][N+1]  the leaf values, BASE the base margin.

A block of B rows is first quantized: bin(x) = how many of its feature's thresholds are <= x,
so that XGBoost's test "x < threshold goes left" becomes "bin(x) < TBIN goes left", on bytes.
Then each tree moves all B rows down one level at a time: at each level, every node of that
level compares its feature byte for the rows that sit at it. No branches on the data and no
gathers but the leaf values, so the compiler vectorizes it over the rows (64 bytes a step with
AVX-512). Trees are summed in order in float32 from BASE, then the logistic, as XGBoost does:
the same float operations in the same order, the same probabilities.
Missing values (NaN) are not handled here: the caller scores such rows with XGBoost.
"""

KERNEL_VERSION = 3  # part of every cache key: bump on any change below

KERNEL_SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define N ((1 << D) - 1)
#define B 512

/* Rows r0 .. r0+nb of X, element (r, f) at X[r * rs + f * cs]: inlined for the two layouts. */
static inline __attribute__((always_inline)) void block(const float *restrict X, int64_t rs,
                                                        int64_t cs, int64_t r0, int nb,
                                                        float *restrict out) {
  uint8_t xb[F][B] __attribute__((aligned(64)));
  float acc[B] __attribute__((aligned(64)));
  uint8_t node[B] __attribute__((aligned(64)));
  uint8_t bit[B] __attribute__((aligned(64)));
  for (int f = 0; f < F; f++) {
    const float *u = CUTS[f];
    const int first = STEPS[f] > 0 ? 1 << (STEPS[f] - 1) : 0;
    for (int j = 0; j < B; j++) {
      const float x = X[(r0 + (j < nb ? j : 0)) * rs + f * cs];
      int pos = 0;
      for (int step = first; step >= 1; step >>= 1) pos += (x >= u[pos + step - 1]) ? step : 0;
      xb[f][j] = (uint8_t)pos;
    }
  }
  for (int j = 0; j < B; j++) acc[j] = BASE;
  for (int t = 0; t < T; t++) {
    const uint16_t *ft = FEAT[t];
    const uint8_t *th = TBIN[t], *rl = REAL[t];
    {
      const uint8_t *x = xb[ft[0]];
      const uint8_t tv = th[0];
      for (int j = 0; j < B; j++) node[j] = (uint8_t)(1 + (x[j] >= tv));
    }
    for (int d = 1, first = 1; d < D; d++, first = 2 * first + 1) {
      for (int j = 0; j < B; j++) bit[j] = 0;
      for (int n = first; n <= 2 * first; n++) {
        if (!rl[n]) continue;
        const uint8_t *x = xb[ft[n]];
        const uint8_t tv = th[n], at = (uint8_t)n;
        for (int j = 0; j < B; j++) bit[j] |= (uint8_t)((node[j] == at) & (x[j] >= tv));
      }
      for (int j = 0; j < B; j++) node[j] = (uint8_t)(2 * node[j] + 1 + bit[j]);
    }
    const float *lv = LEAF[t];
    for (int j = 0; j < B; j++) acc[j] += lv[node[j] - N];
  }
  for (int j = 0; j < nb; j++) out[r0 + j] = 1.0f / (1.0f + expf(-acc[j]));
}

int fraudops_forest_features(void) { return F; }
int fraudops_forest_trees(void) { return T; }

/* Probabilities of rows [0, rows) of the float32 matrix X into out; X is C-ordered (rows x F)
 * when col_stride is 1, else column-major with columns col_stride elements apart. */
void fraudops_forest_predict(const float *X, int64_t rows, int64_t col_stride, float *out) {
  for (int64_t r0 = 0; r0 < rows; r0 += B) {
    const int nb = rows - r0 < B ? (int)(rows - r0) : B;
    if (col_stride == 1)
      block(X, F, 1, r0, nb, out);
    else
      block(X, 1, col_stride, r0, nb, out);
  }
}
"""
