/*
 * rows/masked_rows.h -- short masked rows in the grouped tiny and small-row
 * kernels: exclusion masks applied as x is read (excluding_rows), and
 * causal rows grouped by the length of their kept prefix (prefix_groups).
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* Up to LANES rows of g, each the kernels of its length: tiny if n <=
 * LANES (n the longest), else small. */
static SOFTMAX_FORCE_INLINE void run_group(softmax_op op, const row_group *g, int flags, size_t count, size_t n,
                                           size_t stride, double scale, const shared_plan *shared)
{
    if (!shared->valid) {
        for (size_t r = 0; r < count; r++)
            group_row_aside(op, NULL, NULL, stride, g, flags, r, n, scale, false);
    } else if (n <= LANES) {
        tiny_group_reading(false, op, NULL, NULL, stride, g, flags, count, n, scale, shared);
    } else {
        small_group_reading(false, op, NULL, NULL, stride, g, flags, count, n, scale, shared);
    }
}

/* ------------------------------------------------- causal rows, grouped */

/* Causal rows of which the kept prefix is short (at most SMALL_VECTORS
 * vectors), gathered by kind -- prefixes of at most LANES elements (the
 * tiny kernels) and longer ones (the small ones) -- and computed LANES
 * at a time, each row on its own prefix then filled to n: a row alone
 * in prefix_rows paid for a whole group (or for a single row's chain of
 * reductions). A row's bits do not depend on the rows beside it, so the
 * grouping changes none. */
typedef struct prefix_groups {
    row_group group[2]; /* [0]: tiny prefixes, [1]: small ones */
    size_t count[2];
    size_t longest[2];
} prefix_groups;

static void prefix_groups_flush(prefix_groups *p, int kind, softmax_op op, size_t n, double scale,
                                const shared_plan *shared)
{
    if (p->count[kind] == 0)
        return;
    run_group(op, &p->group[kind], GROUP_ROWS | GROUP_LENGTHS, p->count[kind], p->longest[kind], n, scale, shared);
    p->count[kind] = 0;
    p->longest[kind] = 0;
}

/* Adds the row x -> y of prefix `length` (0 < length <= SMALL_VECTORS *
 * LANES) of a call on rows of n elements, and runs its group once full. */
static void prefix_groups_add(prefix_groups *p, softmax_op op, const T *x, T *y, size_t length, size_t n, double scale,
                              const shared_plan *shared)
{
    const int kind = length > LANES;
    row_group *g = &p->group[kind];
    const size_t r = p->count[kind]++;
    g->rows_x[r] = x;
    g->rows_y[r] = y;
    g->length[r] = length;
    p->longest[kind] = length > p->longest[kind] ? length : p->longest[kind];
    if (p->count[kind] == LANES)
        prefix_groups_flush(p, kind, op, n, scale, shared);
}

/* ---------------------------------------------------- masked short rows */

#if defined(HALF_ROWS)
static SOFTMAX_FORCE_INLINE void excluding_groups(softmax_op op, const softmax_masked_line *lines, size_t count,
                                                  size_t n, int flags, row_group *g, double scale,
                                                  const shared_plan *shared)
{
    for (size_t b0 = 0; b0 < count; b0 += LANES) {
        const size_t rows = count - b0 < LANES ? count - b0 : LANES;
        for (size_t r = 0; r < rows; r++) {
            const softmax_masked_line *line = &lines[b0 + r];
            g->rows_x[r] = line->x;
            g->rows_y[r] = line->y;
            g->keep[r] = line->keep;
            g->mask[r] = (flags & (EXCLUDE_MASK | EXCLUDE_HALF)) ? line->mask : NULL;
            g->kept[r] = line->kept;
        }
        run_group(op, g, flags | GROUP_ROWS, rows, n, n, scale, shared);
    }
}

/* See softmax_kernels.excluding_rows. */
static bool excluding_rows(softmax_op op, const softmax_masked_line *lines, size_t count, size_t n, int mask_type,
                           double scale)
{
    if ((op != SOFTMAX_OP_SOFTMAX && op != SOFTMAX_OP_LOG_SOFTMAX) || count == 0 || n == 0 ||
        n > SMALL_VECTORS * LANES || mask_type < 0 || mask_type > 3)
        return false;
    size_t keeps = 0, masks = 0;
    bool prefix = false;
    for (size_t b = 0; b < count; b++) {
        keeps += lines[b].keep != NULL;
        masks += lines[b].mask != NULL;
        prefix |= lines[b].kept < n;
        if (lines[b].kept > n)
            return false;
    }
    row_group g;
    g.excluded = scale < 0 ? (T)INFINITY : (T)-INFINITY;
    g.half_minus_inf = mask_type == 2 ? (uint16_t)0xff80u : (uint16_t)0xfc00u;
    const int mask_flag = masks == 0 || mask_type == 0 ? 0 : mask_type == 1 ? EXCLUDE_MASK : EXCLUDE_HALF;
    /* Lines of one call come from one plan: each has a keep (a mask) or
     * none does; mixed ones are served too, testing each pointer. */
    const bool mixed = (keeps != 0 && keeps != count) || (mask_flag != 0 && masks != count);
    const int flags =
        (keeps > 0 ? EXCLUDE_KEEP : 0) | mask_flag | (prefix ? EXCLUDE_PREFIX : 0) | (mixed ? GROUP_CHECKED : 0);
    const shared_plan shared = shared_plan_of(scale);
    const unsigned int saved = vec_flush_to_zero_begin();
    /* One specialised body for each single kind (the attention layouts);
     * combinations share a general one per mask type. */
    switch (flags) {
    case EXCLUDE_KEEP:
        excluding_groups(op, lines, count, n, EXCLUDE_KEEP, &g, scale, &shared);
        break;
    case EXCLUDE_MASK:
        excluding_groups(op, lines, count, n, EXCLUDE_MASK, &g, scale, &shared);
        break;
    case EXCLUDE_HALF:
        excluding_groups(op, lines, count, n, EXCLUDE_HALF, &g, scale, &shared);
        break;
    case EXCLUDE_KEEP | EXCLUDE_PREFIX:
        excluding_groups(op, lines, count, n, EXCLUDE_KEEP | EXCLUDE_PREFIX, &g, scale, &shared);
        break;
    default:
        if (mask_flag == EXCLUDE_HALF)
            excluding_groups(op, lines, count, n, EXCLUDE_KEEP | EXCLUDE_HALF | EXCLUDE_PREFIX | GROUP_CHECKED, &g,
                             scale, &shared);
        else
            excluding_groups(op, lines, count, n, EXCLUDE_KEEP | EXCLUDE_MASK | EXCLUDE_PREFIX | GROUP_CHECKED, &g,
                             scale, &shared);
        break;
    }
    vec_flush_to_zero_end(saved);
    return true;
}
#define EXCLUDING_ROWS_FN excluding_rows
#else
/* Paths without f32_exclude decline every line: general.c gathers them. */
#define EXCLUDING_ROWS_FN softmax_portable_excluding_rows
#endif
