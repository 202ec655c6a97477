/*
 * transpose.h -- lines strided along their axis gathered into contiguous rows.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* See softmax_kernels.transpose_lines. Tiles of LANES source rows (j) by
 * LANES lines (b): each load is LANES adjacent lines of one j, each store
 * LANES consecutive j of one line. The b tiles run innermost so that the
 * LANES source rows of a j tile are read in address order. */
static void transpose_lines(const void *src_bytes, int64_t stride, size_t lines, size_t n, void *out_bytes)
{
    const T *src = src_bytes;
    T *out = out_bytes;
    const size_t full_lines = lines - lines % LANES, full_n = n - n % LANES;
    for (size_t j0 = 0; j0 < full_n; j0 += LANES) {
        const T *rows = src + (int64_t)j0 * stride;
        for (size_t b0 = 0; b0 < full_lines; b0 += LANES) {
            V tile[LANES];
            for (size_t r = 0; r < LANES; r++)
                tile[r] = P(load)(rows + (int64_t)r * stride + (int64_t)b0);
            P(transpose)(tile);
            for (size_t c = 0; c < LANES; c++)
                P(store)(out + (b0 + c) * n + j0, tile[c]);
        }
        for (size_t b = full_lines; b < lines; b++)
            for (size_t r = 0; r < LANES; r++)
                out[b * n + j0 + r] = rows[(int64_t)r * stride + (int64_t)b];
    }
    for (size_t j = full_n; j < n; j++)
        for (size_t b = 0; b < lines; b++)
            out[b * n + j] = src[(int64_t)j * stride + (int64_t)b];
}
