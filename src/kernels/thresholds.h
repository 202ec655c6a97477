/*
 * thresholds.h -- every length at which the kernels change regime, in one
 * place: the kernels (src/kernels/), the general pipeline (general.h,
 * planner.c), the tests and the benchmarks read them from here, so that a
 * test "on both sides of a threshold" follows the threshold when it moves.
 * src/kernels/README.md draws the map they cut.
 *
 * Lengths in vectors depend on the ISA: LANES is 16 f32 / 8 f64 on
 * AVX-512, 8 / 4 on AVX2. Lengths in bytes count elements of the
 * computation type (f32 for bf16 / f16 data).
 *
 * Moving a threshold never changes the bits of a result it does not move
 * to another kernel, but it does change which kernel a row takes: the
 * kernels agree bit for bit only where their contracts say so (a row alone
 * and in a group, masked in place and gathered, half and f32 rounded once),
 * so tests/data/determinism.txt is the judge.
 */
#ifndef SOFTMAX_KERNEL_THRESHOLDS_H
#define SOFTMAX_KERNEL_THRESHOLDS_H

#include <stddef.h>

/* Rows of at most one vector (n <= LANES) are "tiny": the tiny kernels
 * run LANES rows side by side, transposed in registers, when at least
 * TINY_GROUP_MIN rows come together; fewer go row by row (the two
 * transposes cost more than a few rows' horizontal reductions). */
#define TINY_GROUP_MIN 4

/* On AVX2 rows of up to TINY_VECTORS_AVX2 vectors are tiny too (16 f32,
 * 8 f64: one AVX-512 vector): LANES of them at a time are transposed block
 * by block into that many columns, whatever the number of rows (a row
 * alone is a group of one there, so that its bits do not depend on its
 * neighbours). In the grouped small-row kernel such a row cost as much as
 * an exp per element again in per-row reductions: 3.0 ns per f32 element
 * on 4096 rows of 10 against 0.8 on AVX-512. Everywhere else a tiny row is
 * one vector. */
#define TINY_VECTORS_AVX2 2

/* Rows of at most SMALL_VECTORS vectors (LANES < n <= SMALL_VECTORS *
 * LANES) are "small": they stay in registers from load to store, LANES
 * rows at a time (FAST_SMALL_GROUP in fast mode). Writing the exps and
 * reading them back would cost a failed store-to-load forwarding (masked
 * store, then load) on every row. */
#define SMALL_VECTORS 8
#define FAST_SMALL_GROUP 2

/* Elements per partial sum (SUM_BLOCK, 16 KiB of f32: it stays in L1
 * between the two reads of the streaming regime). Sums are carried per
 * block and the block totals added in block order: the blocks never depend
 * on the thread count, so neither do results. */
#define SUM_BLOCK ((size_t)4096)

/* Rows whose data exceeds STREAM_BYTES stream: block summaries, then a
 * writing pass around the cache that rescales the exps kept in the
 * workspace (up to STORED_STREAM_BYTES) or computes them again (see
 * stream_exps in rows/cached.h). Below it rows stay in L2 between passes
 * and are read from cache three times with one exp per element (the
 * "in-cache" regime).
 *
 * The stored exps cost 8 bytes per f32 element of traffic through the
 * caches, which pays while they stay in them: measured single-thread on a
 * Zen 4 (1 MiB L2 per core, 32 MiB L3), rows of 300000 f32 went from 0.75
 * to 0.60 ns per element (2 threads: 0.41 -> 0.34), rows of 2^20 from 0.70
 * to 0.55 but with 2 threads from 0.40 to 0.46, rows of 2^22 from 0.83 to
 * 1.14. The choice depends on the row length alone, never on the thread
 * count, so that the bits do not either. */
#define STREAM_BYTES ((size_t)1 << 20)
#define STORED_STREAM_BYTES ((size_t)2 << 20)

/* A single row of at least LONG_ROW_MIN_BLOCKS sum blocks is shared by the
 * threads (rows/across_threads.h), when threads are available. */
#define LONG_ROW_MIN_BLOCKS 8

/* Softmax along a non-last axis: COLUMN_VECTORS vectors of adjacent lines
 * per chunk (COLUMN_VECTORS * LANES lines), each lane its own row. */
#define COLUMN_VECTORS 4

/* Largest |scale * log2(e) * max| of a row that the SIMD kernels' exact
 * argument reduction takes (exp/exact.h: the offset B and B + k must be
 * exact integers in T); larger rows take the portable kernels. type_f32.h
 * and type_f64.h name the one of their type OFFSET_LIMIT. */
#define OFFSET_LIMIT_F32 4194304.0          /* 2^22: B + k stays an exact float integer */
#define OFFSET_LIMIT_F64 1125899906842624.0 /* 2^50 */

/* Softmax along a non-last axis keeps the exps and residuals of one chunk
 * of lines (2 * n * column_chunk elements) in the workspace up to this many
 * bytes (65536 f32 down the axis on AVX-512); longer axes take the portable
 * lines rather than a scratch buffer the size of the input. */
#define COLUMN_WORKSPACE_BYTES ((size_t)32 << 20)

/* Causal f32 rows of at most this many vectors take the masked lines'
 * grouped kernels (excluding_rows, the causal prefix as an exclusion)
 * instead of prefix_rows: the same bits, and at one vector (16 f32 on
 * AVX-512) 1.33x the unmasked call instead of 1.74x; at two (AVX2's 16)
 * no faster. */
#define SHORT_CAUSAL_MAX_VECTORS 1

/* Largest |max z| of a row with an added mask that the masked in-place
 * kernel takes (larger ones take the general path). */
#define ADDED_MASK_MAX_LIMIT 1024

/* Largest |scale * x| of a row with an added mask whose scale is not a
 * power of two, or with ALiBi, that the masked kernels take: the low part
 * of z = scale * x + bias (the product's rounding error, and slope * j's)
 * then stays below 2^-12 wherever the exp is not 0 (exp_parts_added clamps
 * it there). Beyond, a large x cancelled by the bias lost up to 2^-24
 * |scale * x| of z: rows with one take the general path. */
#define ADDED_PRODUCT_LIMIT 512

/* Half-precision rows at least this long take the kernels' half_row: the
 * rows past the f32 kernels' in-cache regime (1 MiB of f32), so that a half
 * row is computed by the same algorithm as the f32 row of its values;
 * shorter ones take half_line. */
#define HALF_ROW_MIN (STREAM_BYTES / sizeof(float) + 1)

/* Fast mode: the kernels read half-precision lines longer than this in
 * place (fast_half_line: more than SMALL_VECTORS vectors of f32 on AVX-512,
 * 16 on AVX2); shorter ones are gathered for the grouped kernels. */
#define FAST_HALF_LINE_MIN ((size_t)128)

#endif /* SOFTMAX_KERNEL_THRESHOLDS_H */
