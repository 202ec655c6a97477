/*
 * softmax_bench.c -- libsoftmax against its anchors, side by side in one
 * process, on the same buffers:
 *
 *   memcpy          the same bytes (the physical limit)
 *   naive libm      max, expf-store-sum, scale: scalar, one expf call each
 *   libmvec 3-pass  the same loop vectorised (glibc's vector expf)
 *   oneDNN          its softmax primitive (accurate / log / backward)
 *   XNNPACK         softmax_nc_f32 (forward, last axis)
 *   libsoftmax      this library, through include/softmax.h only
 *
 * For each shape, operation and thread count the candidates are sampled
 * interleaved (A B C ... A B C ...), each sample lasting >= 2 ms, and only
 * samples taken while the cores were in their fast state count (see
 * fast_state.h); the tables give medians in ns per element.
 *
 *   softmax_bench [--quick] [--shapes LIST] [--ops LIST] [--threads N]
 *                 [--scale S] [--samples N] [--markdown] [--csv FILE] [--f64]
 *                 [--list-shapes]
 *
 * Run `softmax_bench --help` for the details. scripts/bench.sh runs it and
 * writes BENCHMARKS.md.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "checks.h"
#include "fast_state.h"
#include "harness.h"
#include "softmax.h"

/* The quick run keeps every shape the speed goals of BENCHMARKS.md name
 * (bench/report.py), so that a smoke run fills the whole goals table. */
#define DEFAULT_SHAPES                                                                                                 \
    "1x10,1x100,4096x10,65536x16,16384x128,4096x1000,1024x4096,64x32000,1x32000,1x256000,8x151936,16x1048576,"         \
    "4096x1024:axis0,1024x4096:axis0"
#define QUICK_SHAPES                                                                                                   \
    "1x10,1x100,4096x10,65536x16,16384x128,1024x4096,64x32000,1x256000,16x1048576,4096x1024:axis0,1024x4096:axis0"
/* Single rows up to this length also get a table in ns per call: the
 * latency a sampler or a Python call pays. */
#define PER_CALL_MAX_COLS 1000

enum { MAX_SHAPES = 64, MAX_CANDIDATES = 10, OP_COUNT = 3, MAX_GROUPS = MAX_SHAPES * OP_COUNT * 2 };

/* The columns of every table, in order: the limit, the anchors, the library. */
static const char *const column_names[] = {"memcpy", "naive libm", "libmvec 3-pass", "oneDNN", "XNNPACK", "libsoftmax"};
enum { COLUMN_COUNT = 6, LIBRARY_COLUMN = 5 };

/* libsoftmax with SOFTMAX_FLAG_FAST, timed beside the rest of its row. */
#define FAST_NAME "libsoftmax fast"

static const char *const op_names[OP_COUNT] = {"forward", "log", "backward"};
static const char *const op_titles[OP_COUNT] = {"softmax forward", "log-softmax forward", "softmax backward"};
/* Bytes an operation must move per element: forward reads x and writes y;
 * backward reads y and dy and writes dx. */
static const double op_bytes[OP_COUNT] = {8.0, 8.0, 12.0};

typedef struct shape_spec {
    size_t rows;
    size_t cols;
    int axis; /* 1: last axis, 0: axis 0 */
    char label[64];
} shape_spec;

typedef struct options {
    shape_spec shapes[MAX_SHAPES];
    size_t shape_count;
    int ops[OP_COUNT]; /* which ops run */
    int threads;       /* the "all threads" run; 1 = single thread only */
    float scale;
    int markdown;
    const char *csv_path;
    int quick;
    int f64;         /* also time the same problems in f64: the "f64 / f32" ratio */
    int list_shapes; /* print the shape list and stop (scripts/bench.sh gives it to torch_bench.py) */
    const char *shape_list;
    harness_settings harness;
    double calibration_seconds;
} options;

/* One table cell's worth of measurements: a shape, an op, a thread count. */
typedef struct group {
    size_t shape;
    bench_op op;
    int threads;
    candidate cands[MAX_CANDIDATES];
    size_t count;
} group;

typedef struct buffers {
    size_t n;
    float *x, *y, *dy, *out, *library_out, *scratch;
    double *reference; /* forward/log in double, for the accuracy table */
} buffers;

static group groups[MAX_GROUPS];
static size_t group_count;

/* ---------------------------------------------------------------- options */

static void usage(FILE *to)
{
    fprintf(to, "usage: softmax_bench [options]\n"
                "  --quick         a smoke run: fewer shapes (" QUICK_SHAPES "),\n"
                "                  shorter samples, median of >= 5 fast samples\n"
                "  --shapes LIST   comma-separated RxC (softmax along the last axis) or RxC:axis0;\n"
                "                  default " DEFAULT_SHAPES "\n"
                "  --ops LIST      comma-separated subset of forward,log,backward (default all)\n"
                "  --threads N     the multi-thread run uses N threads (default: the library's default,\n"
                "                  SOFTMAX_NUM_THREADS or the online cores); 1 = single thread only\n"
                "  --scale S       inverse temperature (default 1): the library fuses it, the library\n"
                "                  anchors pay a separate multiply pass, the loops fold it in\n"
                "  --samples N     median of at least N fast samples per candidate (default 11)\n"
                "  --list-shapes   print the shapes this run would time (with --quick: the quick ones), then stop\n"
                "  --markdown      print markdown tables\n"
                "  --csv FILE      also write every measurement to FILE\n"
                "  --f64           also time libsoftmax's f64 functions on the same problems (inputs\n"
                "                  widened; last axis), interleaved: the \"f64 / f32\" ratio in the\n"
                "                  same-run ratios (with SOFTMAX_ISA=scalar: portable f64 vs portable f32)\n");
}

static int parse_shape(const char *text, shape_spec *shape)
{
    char tail[16] = "";
    unsigned long long rows, cols;
    if (sscanf(text, "%llux%llu%15s", &rows, &cols, tail) < 2 || rows == 0 || cols == 0)
        return -1;
    if (tail[0] != '\0' && strcmp(tail, ":axis0") != 0)
        return -1;
    shape->rows = (size_t)rows;
    shape->cols = (size_t)cols;
    shape->axis = tail[0] != '\0' ? 0 : 1;
    snprintf(shape->label, sizeof shape->label, "%llux%llu%s", rows, cols, shape->axis == 0 ? " axis 0" : "");
    return 0;
}

static int parse_shapes(const char *list, options *o)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", list);
    o->shape_count = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        if (o->shape_count == MAX_SHAPES || parse_shape(item, &o->shapes[o->shape_count]) != 0) {
            fprintf(stderr, "softmax_bench: bad shape '%s' (want RxC or RxC:axis0)\n", item);
            return -1;
        }
        o->shape_count++;
    }
    return o->shape_count > 0 ? 0 : -1;
}

static int parse_ops(const char *list, options *o)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", list);
    memset(o->ops, 0, sizeof o->ops);
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int op = 0; op < OP_COUNT; op++)
            if (strcmp(item, op_names[op]) == 0)
                o->ops[op] = found = 1;
        if (!found) {
            fprintf(stderr, "softmax_bench: unknown op '%s' (want forward, log, backward)\n", item);
            return -1;
        }
    }
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    const char *shapes = NULL, *ops = "forward,log,backward";
    long samples = 0;
    *o = (options){.threads = softmax_get_num_threads(), .scale = 1.0f};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(arg, "--quick") == 0) {
            o->quick = 1;
            continue;
        }
        if (strcmp(arg, "--markdown") == 0) {
            o->markdown = 1;
            continue;
        }
        if (strcmp(arg, "--f64") == 0) {
            o->f64 = 1;
            continue;
        }
        if (strcmp(arg, "--list-shapes") == 0) {
            o->list_shapes = 1;
            continue;
        }
        const char *value = i + 1 < argc ? argv[++i] : NULL;
        if (strcmp(arg, "--shapes") == 0)
            shapes = value;
        else if (strcmp(arg, "--ops") == 0)
            ops = value;
        else if (strcmp(arg, "--threads") == 0)
            o->threads = value ? atoi(value) : 0;
        else if (strcmp(arg, "--scale") == 0)
            o->scale = value ? strtof(value, NULL) : NAN;
        else if (strcmp(arg, "--samples") == 0)
            samples = value ? atol(value) : -1;
        else if (strcmp(arg, "--csv") == 0)
            o->csv_path = value;
        else {
            fprintf(stderr, "softmax_bench: unknown option '%s'\n", arg);
            return -1;
        }
        if (value == NULL) {
            fprintf(stderr, "softmax_bench: option '%s' needs a value\n", arg);
            return -1;
        }
    }
    if (o->threads < 1 || isnan(o->scale) || samples < 0) {
        fprintf(stderr, "softmax_bench: --threads and --samples want N >= 1, --scale a number\n");
        return -1;
    }
    o->shape_list = shapes != NULL ? shapes : o->quick ? QUICK_SHAPES : DEFAULT_SHAPES;
    if (parse_shapes(o->shape_list, o) != 0 || parse_ops(ops, o) != 0)
        return -1;
    o->harness.sample_ns = o->quick ? 1e6 : 2e6;
    o->harness.min_kept = samples > 0 ? (size_t)samples : o->quick ? 5 : 11;
    o->harness.max_rounds = 3 * o->harness.min_kept;
    o->calibration_seconds = o->quick ? 0.3 : 1.0;
    return 0;
}

/* ---------------------------------------------------------------- buffers */

static float *alloc_floats(size_t n)
{
    /* Padding past the end: XNNPACK may read up to XNN_EXTRA_BYTES beyond. */
    size_t bytes = ((n + 64) * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (p != NULL)
        memset(p, 0, bytes); /* fault the pages in now, not in a sample */
    return p;
}

static uint64_t rng_state;

static double uniform01(void)
{
    /* splitmix64: a fixed seed gives the same inputs on every run. */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static void fill_normal(float *v, size_t n, double sigma)
{
    const double two_pi = 6.283185307179586;
    for (size_t i = 0; i < n; i += 2) {
        double radius = sqrt(-2.0 * log(uniform01())) * sigma, angle = two_pi * uniform01();
        v[i] = (float)(radius * cos(angle));
        if (i + 1 < n)
            v[i + 1] = (float)(radius * sin(angle));
    }
}

static void free_buffers(buffers *b)
{
    free(b->x), free(b->y), free(b->dy), free(b->out), free(b->library_out), free(b->scratch);
    free(b->reference);
    memset(b, 0, sizeof *b);
}

/* Inputs x ~ normal * 10, dy ~ normal, y = libsoftmax's softmax of x. */
static int make_buffers(const shape_spec *shape, float scale, buffers *b)
{
    b->n = shape->rows * shape->cols;
    b->x = alloc_floats(b->n), b->y = alloc_floats(b->n), b->dy = alloc_floats(b->n);
    b->out = alloc_floats(b->n), b->library_out = alloc_floats(b->n), b->scratch = alloc_floats(b->n);
    b->reference = malloc(b->n * sizeof(double));
    if (!b->x || !b->y || !b->dy || !b->out || !b->library_out || !b->scratch || !b->reference)
        return -1;
    rng_state = 0x5EED5EED;
    fill_normal(b->x, b->n, 10.0);
    fill_normal(b->dy, b->n, 1.0);
    bench_problem forward = {.op = BENCH_FORWARD,
                             .rows = shape->rows,
                             .cols = shape->cols,
                             .axis = shape->axis,
                             .scale = scale,
                             .threads = 1,
                             .x = b->x,
                             .out = b->y,
                             .scratch = b->scratch};
    bench_runner runner;
    const char *why_not = "";
    if (library_prepare(&forward, &runner, &why_not) != 0) {
        fprintf(stderr, "softmax_bench: %s\n", why_not);
        return -1;
    }
    runner.destroy(runner.context);
    return 0;
}

/* ---------------------------------------------------------------- groups */

static candidate *add_candidate(group *g, const char *name, candidate_role role, bench_prepare_fn prepare,
                                const bench_problem *problem)
{
    candidate *c = &g->cands[g->count++];
    memset(c, 0, sizeof *c);
    c->name = name;
    c->role = role;
    c->elements = bench_elements(problem);
    c->why_not = "";
    c->available = prepare(problem, &c->runner, &c->why_not) == 0;
    return c;
}

static void add_candidates(group *g, const bench_problem *p, int f64)
{
    static const bench_prepare_fn anchors[] = {anchor_naive_prepare, anchor_simd_loop_prepare, anchor_onednn_prepare,
                                               anchor_xnnpack_prepare};
    add_candidate(g, column_names[0], ROLE_LIMIT, anchor_memcpy_prepare, p);
    for (int a = 0; a < 4; a++)
        add_candidate(g, column_names[1 + a], ROLE_ANCHOR, anchors[a], p);
    add_candidate(g, column_names[LIBRARY_COLUMN], ROLE_LIBRARY, library_prepare, p);

    /* libsoftmax on related problems, interleaved with the rest so that the
     * ratios the speed goals name are measured side by side. */
    if (p->threads > 1) {
        bench_problem single = *p;
        single.threads = 1;
        add_candidate(g, "libsoftmax 1 thread", ROLE_REFERENCE, library_prepare, &single);
    }
    if (p->op == BENCH_LOG) {
        bench_problem forward = *p;
        forward.op = BENCH_FORWARD;
        add_candidate(g, "libsoftmax softmax", ROLE_REFERENCE, library_prepare, &forward);
    }
    if (p->op != BENCH_BACKWARD && p->axis == 1)
        add_candidate(g, FAST_NAME, ROLE_REFERENCE, library_fast_prepare, p);
    if (f64 && p->axis == 1)
        add_candidate(g, "libsoftmax f64", ROLE_REFERENCE, library_f64_prepare, p);
    if (p->axis == 0) {
        bench_problem transposed = *p;
        transposed.rows = p->cols, transposed.cols = p->rows, transposed.axis = 1;
        add_candidate(g, "libsoftmax last axis", ROLE_REFERENCE, library_prepare, &transposed);
    }
}

static void run_into(const candidate *c, float *out, size_t n)
{
    memset(out, 0xff, n * sizeof(float)); /* NaN: an anchor that writes nothing shows */
    c->runner.run(c->runner.context);
}

/* Each anchor against libsoftmax's output; in the single-thread run, forward
 * and log, everyone against the double reference too. */
static void check_group(group *g, const bench_problem *p, buffers *b)
{
    const int accuracy = p->threads == 1 && p->op != BENCH_BACKWARD;
    if (accuracy)
        checks_reference(p, b->reference);
    candidate *library = &g->cands[LIBRARY_COLUMN];
    if (library->available) {
        run_into(library, b->out, b->n);
        memcpy(b->library_out, b->out, b->n * sizeof(float));
    }
    for (size_t i = 1; i <= LIBRARY_COLUMN; i++) {
        candidate *c = &g->cands[i];
        if (!c->available)
            continue;
        if (c->role == ROLE_ANCHOR) {
            run_into(c, b->out, b->n);
            if (library->available) {
                c->checked = 1;
                c->max_diff = checks_max_diff(b->out, b->library_out, b->n, p->op);
            }
        }
        if (accuracy) {
            c->accuracy_checked = 1;
            checks_ulp(c->role == ROLE_LIBRARY ? b->library_out : b->out, b->reference, b->n, p->op, &c->max_ulp,
                       &c->lost);
        }
    }
    /* The fast mode's own bound (softmax.h, "Fast mode") is one of the speed
     * goals' rows: measure it on the same inputs. */
    for (size_t i = LIBRARY_COLUMN + 1; accuracy && i < g->count; i++) {
        candidate *c = &g->cands[i];
        if (c->available && strcmp(c->name, FAST_NAME) == 0) {
            run_into(c, b->out, b->n);
            c->accuracy_checked = 1;
            checks_ulp(b->out, b->reference, b->n, p->op, &c->max_ulp, &c->lost);
        }
    }
}

static void report_progress(const group *g, const shape_spec *shape)
{
    fprintf(stderr, "  %-18s %-8s %d thr:", shape->label, op_names[g->op], g->threads);
    for (size_t i = 0; i < g->count; i++) {
        candidate c = g->cands[i];
        if (c.available) {
            harness_summarize(&c);
            fprintf(stderr, " %s %.3g", c.name, c.median);
        }
    }
    fprintf(stderr, "\n");
}

static void run_group(const options *o, size_t shape_index, bench_op op, int threads, buffers *b)
{
    const shape_spec *shape = &o->shapes[shape_index];
    group *g = &groups[group_count++];
    *g = (group){.shape = shape_index, .op = op, .threads = threads};
    bench_problem problem = {.op = op,
                             .rows = shape->rows,
                             .cols = shape->cols,
                             .axis = shape->axis,
                             .scale = o->scale,
                             .threads = threads,
                             .x = b->x,
                             .y = b->y,
                             .dy = b->dy,
                             .out = b->out,
                             .scratch = b->scratch};
    add_candidates(g, &problem, o->f64);
    check_group(g, &problem, b);
    harness_settings settings = o->harness;
    settings.probe_threads = threads;
    harness_measure(g->cands, g->count, &settings);
    for (size_t i = 0; i < g->count; i++) {
        candidate *c = &g->cands[i];
        if (c->available && c->runner.destroy != NULL)
            c->runner.destroy(c->runner.context);
    }
    report_progress(g, shape);
}

/* ---------------------------------------------------------------- tables */

typedef struct table {
    int markdown;
    size_t columns;
    size_t rows;
    char cells[64][16][128];
} table;

static table current;

static void table_begin(int markdown, size_t columns)
{
    current.markdown = markdown;
    current.columns = columns;
    current.rows = 0;
}

static void table_cell(size_t column, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void table_cell(size_t column, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(current.cells[current.rows][column], sizeof current.cells[0][0], format, args);
    va_end(args);
}

static void table_next_row(void)
{
    if (current.rows + 1 < sizeof current.cells / sizeof current.cells[0])
        current.rows++;
}

/* Row 0 is the header. Markdown, or columns aligned for a terminal. */
static void table_print(FILE *to)
{
    size_t width[16] = {0};
    for (size_t r = 0; r < current.rows; r++)
        for (size_t c = 0; c < current.columns; c++) {
            size_t length = strlen(current.cells[r][c]);
            width[c] = length > width[c] ? length : width[c];
        }
    for (size_t r = 0; r < current.rows; r++) {
        for (size_t c = 0; c < current.columns; c++) {
            if (current.markdown)
                fprintf(to, "| %s ", current.cells[r][c]);
            else
                fprintf(to, "%-*s  ", (int)width[c], current.cells[r][c]);
        }
        fprintf(to, current.markdown ? "|\n" : "\n");
        if (r == 0 && current.markdown) {
            for (size_t c = 0; c < current.columns; c++)
                fprintf(to, "| --- ");
            fprintf(to, "|\n");
        }
    }
    fprintf(to, "\n");
}

/* ns per element with 3 significant digits. */
static void format_ns(char *text, size_t size, double ns)
{
    if (ns >= 1000.0)
        snprintf(text, size, "%.0f", ns);
    else
        snprintf(text, size, "%.3g", ns);
}

static const candidate *find(const group *g, const char *name)
{
    for (size_t i = 0; i < g->count; i++)
        if (strcmp(g->cands[i].name, name) == 0 && g->cands[i].available)
            return &g->cands[i];
    return NULL;
}

static const group *find_group(size_t shape, bench_op op, int threads)
{
    for (size_t i = 0; i < group_count; i++)
        if (groups[i].shape == shape && groups[i].op == op && groups[i].threads == threads)
            return &groups[i];
    return NULL;
}

/* The fastest real alternative (not memcpy, not the library). */
static const candidate *best_anchor(const group *g)
{
    const candidate *best = NULL;
    for (size_t i = 0; i < g->count; i++) {
        const candidate *c = &g->cands[i];
        if (c->role == ROLE_ANCHOR && c->available && (best == NULL || c->median < best->median))
            best = c;
    }
    return best;
}

/* Interleaved ratios against the reference runs of the library. */
static const char *noise_mark(const candidate *a, const candidate *b)
{
    return a->slow_only || b->slow_only ? "*" : "";
}

static void format_notes(char *text, size_t size, const group *g, const options *o)
{
    const candidate *library = find(g, "libsoftmax");
    const candidate *reference;
    text[0] = '\0';
    if (library == NULL)
        return;
    size_t used = 0;
    if ((reference = find(g, "libsoftmax 1 thread")) != NULL)
        used += (size_t)snprintf(text + used, size - used, "%.2fx over 1 thread%s; ",
                                 reference->median / library->median, noise_mark(library, reference));
    if ((reference = find(g, "libsoftmax softmax")) != NULL && used < size)
        used += (size_t)snprintf(text + used, size - used, "log / softmax %.2f%s; ",
                                 library->median / reference->median, noise_mark(library, reference));
    if ((reference = find(g, FAST_NAME)) != NULL && reference->available && used < size) {
        const candidate *best = best_anchor(g);
        used += (size_t)snprintf(text + used, size - used, "fast mode %.3g ns (%.2fx over the accurate mode",
                                 reference->median, library->median / reference->median);
        if (best != NULL && used < size)
            used += (size_t)snprintf(text + used, size - used, ", %.2fx over %s", best->median / reference->median,
                                     best->name);
        if (used < size)
            used += (size_t)snprintf(text + used, size - used, ")%s; ", noise_mark(library, reference));
    }
    if ((reference = find(g, "libsoftmax f64")) != NULL && used < size)
        used +=
            (size_t)snprintf(text + used, size - used, "f64 / f32 %.2f (f64 %.3g ns)%s; ",
                             reference->median / library->median, reference->median, noise_mark(library, reference));
    if ((reference = find(g, "libsoftmax last axis")) != NULL && used < size) {
        const shape_spec *s = &o->shapes[g->shape];
        used += (size_t)snprintf(text + used, size - used, "axis 0 / last axis of %zux%zu %.2f%s; ", s->cols, s->rows,
                                 library->median / reference->median, noise_mark(library, reference));
    }
    if (used >= 2 && used < size)
        text[used - 2] = '\0';
}

static void format_check(char *text, size_t size, const group *g)
{
    size_t used = 0;
    text[0] = '\0';
    for (size_t i = 0; i < g->count && used < size; i++) {
        const candidate *c = &g->cands[i];
        if (c->checked && !(c->max_diff < CHECK_TOLERANCE))
            used += (size_t)snprintf(text + used, size - used, "%s%s differs by %.1e", used ? "; " : "", c->name,
                                     c->max_diff);
    }
    if (used == 0)
        snprintf(text, size, "ok");
}

static void print_speed_table(const options *o, bench_op op, int threads)
{
    int any = 0;
    for (size_t s = 0; s < o->shape_count; s++)
        any |= find_group(s, op, threads) != NULL;
    if (!any)
        return;
    printf(o->markdown ? "### %s, %d thread%s, scale %g\n\n" : "== %s, %d thread%s, scale %g ==\n", op_titles[op],
           threads, threads > 1 ? "s" : "", (double)o->scale);
    table_begin(o->markdown, 14);
    const char *header[] = {"shape",
                            "memcpy",
                            "naive libm",
                            "libmvec 3-pass",
                            "oneDNN",
                            "XNNPACK",
                            "libsoftmax",
                            "memcpy GB/s",
                            "libsoftmax GB/s",
                            "lib / memcpy",
                            "lib speed-up vs best anchor",
                            "kept",
                            "same-run ratios",
                            "check vs libsoftmax"};
    for (size_t c = 0; c < 14; c++)
        table_cell(c, "%s", header[c]);
    table_next_row();
    for (size_t s = 0; s < o->shape_count; s++) {
        const group *g = find_group(s, op, threads);
        if (g == NULL)
            continue;
        table_cell(0, "%s", o->shapes[s].label);
        size_t min_kept = SIZE_MAX, rounds = 0;
        for (size_t col = 0; col < COLUMN_COUNT; col++) {
            const candidate *c = &g->cands[col];
            if (!c->available) {
                table_cell(1 + col, "n/a");
                continue;
            }
            char ns[32];
            format_ns(ns, sizeof ns, c->median);
            table_cell(1 + col, "%s%s", ns, c->slow_only ? "*" : "");
        }
        for (size_t i = 0; i < g->count; i++)
            if (g->cands[i].available) {
                min_kept = g->cands[i].kept < min_kept ? g->cands[i].kept : min_kept;
                rounds = g->cands[i].samples > rounds ? g->cands[i].samples : rounds;
            }
        const candidate *memcpy_c = find(g, "memcpy"), *library = find(g, "libsoftmax"), *best = best_anchor(g);
        /* A figure derived from a median without any clean sample is noise too. */
        const char *noisy_memcpy = memcpy_c && memcpy_c->slow_only ? "*" : "";
        const char *noisy_library = library && library->slow_only ? "*" : "";
        const char *noisy_pair = (memcpy_c && memcpy_c->slow_only) || (library && library->slow_only) ? "*" : "";
        const char *noisy_best = (best && best->slow_only) || (library && library->slow_only) ? "*" : "";
        if (memcpy_c)
            table_cell(7, "%.1f%s", op_bytes[op] / memcpy_c->median, noisy_memcpy);
        else
            table_cell(7, "n/a");
        if (library)
            table_cell(8, "%.1f%s", op_bytes[op] / library->median, noisy_library);
        else
            table_cell(8, "n/a");
        if (library && memcpy_c)
            table_cell(9, "%.2f%s", memcpy_c->median / library->median, noisy_pair);
        else
            table_cell(9, "n/a");
        if (library && best)
            table_cell(10, "%.2fx (%s)%s", best->median / library->median, best->name, noisy_best);
        else
            table_cell(10, "n/a");
        table_cell(11, "%zu/%zu", min_kept == SIZE_MAX ? 0 : min_kept, rounds);
        format_notes(current.cells[current.rows][12], sizeof current.cells[0][0], g, o);
        format_check(current.cells[current.rows][13], sizeof current.cells[0][0], g);
        table_next_row();
    }
    table_print(stdout);
}

/* Single short rows (1 x C, C <= PER_CALL_MAX_COLS), forward, 1 thread: the
 * same medians as the speed table, times the elements of a call. */
static void print_per_call_table(const options *o)
{
    static const char *const columns[] = {"libsoftmax", FAST_NAME, "naive libm", "libmvec 3-pass", "oneDNN", "XNNPACK"};
    enum { PER_CALL_COLUMNS = 6 };
    int any = 0;
    for (size_t s = 0; s < o->shape_count; s++)
        any |= o->shapes[s].rows == 1 && o->shapes[s].cols <= PER_CALL_MAX_COLS && o->shapes[s].axis == 1 &&
               find_group(s, BENCH_FORWARD, 1) != NULL;
    if (!any)
        return;
    printf(o->markdown ? "### A single short row: ns per call, softmax forward, 1 thread, scale %g\n\n"
                       : "== a single short row: ns per call, softmax forward, 1 thread, scale %g ==\n",
           (double)o->scale);
    printf("The time of one call on one row (the latency a sampler or a Python call pays), from the same "
           "interleaved samples as the forward table: its ns per element times the row length.\n\n");
    table_begin(o->markdown, 3 + PER_CALL_COLUMNS);
    table_cell(0, "shape");
    table_cell(1, "libsoftmax");
    table_cell(2, "libsoftmax fast mode");
    for (size_t c = 2; c < PER_CALL_COLUMNS; c++)
        table_cell(1 + c, "%s", columns[c]);
    table_cell(1 + PER_CALL_COLUMNS, "lib speed-up vs best anchor");
    table_cell(2 + PER_CALL_COLUMNS, "kept");
    table_next_row();
    for (size_t s = 0; s < o->shape_count; s++) {
        const shape_spec *shape = &o->shapes[s];
        const group *g = find_group(s, BENCH_FORWARD, 1);
        if (shape->rows != 1 || shape->cols > PER_CALL_MAX_COLS || shape->axis != 1 || g == NULL)
            continue;
        table_cell(0, "%s", shape->label);
        size_t min_kept = SIZE_MAX, rounds = 0;
        for (size_t c = 0; c < PER_CALL_COLUMNS; c++) {
            const candidate *k = find(g, columns[c]);
            if (k == NULL) {
                table_cell(1 + c, "n/a");
                continue;
            }
            table_cell(1 + c, "%.1f%s", k->median * (double)k->elements, k->slow_only ? "*" : "");
            min_kept = k->kept < min_kept ? k->kept : min_kept;
            rounds = k->samples > rounds ? k->samples : rounds;
        }
        const candidate *library = find(g, "libsoftmax"), *best = best_anchor(g);
        if (library && best)
            table_cell(1 + PER_CALL_COLUMNS, "%.2fx (%s)%s", best->median / library->median, best->name,
                       best->slow_only || library->slow_only ? "*" : "");
        else
            table_cell(1 + PER_CALL_COLUMNS, "n/a");
        table_cell(2 + PER_CALL_COLUMNS, "%zu/%zu", min_kept == SIZE_MAX ? 0 : min_kept, rounds);
        table_next_row();
    }
    table_print(stdout);
}

static void print_accuracy_table(const options *o)
{
    int any = 0;
    for (size_t i = 0; i < group_count; i++)
        any |= groups[i].cands[LIBRARY_COLUMN].accuracy_checked;
    if (!any)
        return;
    printf(o->markdown ? "### Accuracy, 1 thread, scale %g: max error in ulp against a double reference\n\n"
                       : "== accuracy, 1 thread, scale %g: max error in ulp against a double reference ==\n",
           (double)o->scale);
    printf("Softmax: over outputs >= %g; \"N lost\": N outputs in [FLT_MIN, %g) came back 0 or off by more than "
           "%g relative. Log-softmax: in ulp of max(|y|, 1), over every output.\n\n",
           CHECK_TAIL_BELOW, CHECK_TAIL_BELOW, CHECK_LOST_RELATIVE);
    table_begin(o->markdown, 8);
    const char *header[] = {"shape",  "op",      "naive libm", "libmvec 3-pass",
                            "oneDNN", "XNNPACK", "libsoftmax", "libsoftmax fast mode"};
    for (size_t c = 0; c < 8; c++)
        table_cell(c, "%s", header[c]);
    table_next_row();
    for (size_t i = 0; i < group_count; i++) {
        const group *g = &groups[i];
        if (!g->cands[LIBRARY_COLUMN].accuracy_checked)
            continue;
        table_cell(0, "%s", o->shapes[g->shape].label);
        table_cell(1, "%s", op_names[g->op]);
        for (size_t col = 1; col <= LIBRARY_COLUMN + 1; col++) {
            const candidate *c = col <= LIBRARY_COLUMN ? &g->cands[col] : find(g, FAST_NAME);
            if (c == NULL || !c->accuracy_checked)
                table_cell(1 + col, "n/a");
            else if (c->lost)
                table_cell(1 + col, "%.1f (%zu lost)", c->max_ulp, c->lost);
            else
                table_cell(1 + col, "%.1f", c->max_ulp);
        }
        table_next_row();
    }
    table_print(stdout);
}

static void print_edge_table(const options *o)
{
    static const bench_prepare_fn prepares[] = {anchor_naive_prepare, anchor_simd_loop_prepare, anchor_onednn_prepare,
                                                anchor_xnnpack_prepare, library_prepare};
    printf(o->markdown ? "### Edge rows of the numerics contract (one row of 1000, scale 1)\n\n"
                       : "== edge rows of the numerics contract (one row of 1000, scale 1) ==\n");
    table_begin(o->markdown, 5);
    const char *header[] = {"candidate", "op", "fully masked row (all -inf)", "one +inf element",
                            "half the row -inf (a mask)"};
    for (size_t c = 0; c < 5; c++)
        table_cell(c, "%s", header[c]);
    table_next_row();
    for (size_t k = 0; k < 5; k++)
        for (int op = BENCH_FORWARD; op <= BENCH_LOG; op++) {
            table_cell(0, "%s", column_names[1 + k]);
            table_cell(1, "%s", op_names[op]);
            for (int e = 0; e < EDGE_CASES; e++)
                table_cell(2 + (size_t)e, "%s", checks_edge(prepares[k], (bench_op)op, (edge_case)e));
            table_next_row();
        }
    table_print(stdout);
}

static void write_csv(const options *o)
{
    FILE *f = fopen(o->csv_path, "w");
    if (f == NULL) {
        fprintf(stderr, "softmax_bench: cannot write %s: %s\n", o->csv_path, strerror(errno));
        return;
    }
    fprintf(f, "op,threads,scale,shape,candidate,ns_per_element,ns_per_call,gb_per_s,kept,samples,max_diff,max_ulp,"
               "lost,status\n");
    for (size_t i = 0; i < group_count; i++) {
        const group *g = &groups[i];
        for (size_t k = 0; k < g->count; k++) {
            const candidate *c = &g->cands[k];
            fprintf(f, "%s,%d,%g,%s,%s,", op_names[g->op], g->threads, (double)o->scale, o->shapes[g->shape].label,
                    c->name);
            if (!c->available) {
                fprintf(f, ",,,,,,,,\"n/a: %s\"\n", c->why_not);
                continue;
            }
            fprintf(f, "%.6g,%.6g,%.4g,%zu,%zu,", c->median, c->median * (double)c->elements,
                    op_bytes[g->op] / c->median, c->kept, c->samples);
            c->checked ? fprintf(f, "%.3g,", c->max_diff) : fprintf(f, ",");
            c->accuracy_checked ? fprintf(f, "%.3g,%zu,", c->max_ulp, c->lost) : fprintf(f, ",,");
            fprintf(f, "%s\n", c->slow_only ? "slow-state only" : "ok");
        }
    }
    fclose(f);
}

/* ---------------------------------------------------------------- main */

static void print_header(const options *o)
{
    char wait_share[16];
    snprintf(wait_share, sizeof wait_share, "%.0f%%", FAST_STATE_MAX_WAIT * 100.0);
    const char *item = o->markdown ? "- " : "";
    const char *isa = getenv("SOFTMAX_ISA");
    printf("%slibsoftmax %s", item, softmax_version());
#ifdef BENCH_HAVE_ISA_NAME
    const char *path = softmax_isa_name();
    printf(", ISA path %s", path != NULL ? path : "unavailable");
#endif
    if (isa != NULL && isa[0] != '\0')
        printf(" (SOFTMAX_ISA=%s)", isa);
    printf("\n");
    printf("%s%s; %s\n", item, anchor_onednn_description(), anchor_xnnpack_description());
    if (o->threads > 1)
        printf("%sthreads: 1 and %d; in the multi-thread tables every candidate (memcpy, the loops, oneDNN, XNNPACK, "
               "libsoftmax) uses that many threads\n",
               item, o->threads);
    else
        printf("%sthreads: 1 only\n", item);
    printf("%sinputs x ~ normal * 10, dy ~ normal (fixed seed); scale %g%s\n", item, (double)o->scale,
           o->scale != 1.0f ? " (oneDNN and XNNPACK pay a separate multiply pass; the loops fold it in)" : "");
    printf("%ssample filter: fastest probe %.1f us; a sample counts if both probes around it take <= %.1fx that%s%s; "
           "samples >= %.0f ms; median of >= %zu such samples (at most %zu rounds)\n\n",
           item, harness_fastest_probe() / 1e3, FAST_STATE_TOLERANCE,
           fast_state_run_delay_ns() >= 0.0 ? " and no thread of the process waited for a core (schedstat) for more "
                                              "than this share of it: "
                                            : "",
           fast_state_run_delay_ns() >= 0.0 ? wait_share : "", o->harness.sample_ns / 1e6, o->harness.min_kept,
           o->harness.max_rounds);
}

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    if (o.list_shapes) {
        printf("%s\n", o.shape_list);
        return 0;
    }
    double start = fast_state_now_ns();
    harness_calibrate(o.calibration_seconds);
    const int phases[2] = {1, o.threads};
    const int phase_count = o.threads > 1 ? 2 : 1;
    for (size_t s = 0; s < o.shape_count; s++) {
        buffers b = {0};
        fprintf(stderr, "[%zu/%zu] %s\n", s + 1, o.shape_count, o.shapes[s].label);
        if (make_buffers(&o.shapes[s], o.scale, &b) != 0) {
            fprintf(stderr, "softmax_bench: cannot set up %s, skipped\n", o.shapes[s].label);
            free_buffers(&b);
            continue;
        }
        for (int t = 0; t < phase_count; t++)
            for (int op = 0; op < OP_COUNT; op++)
                if (o.ops[op])
                    run_group(&o, s, (bench_op)op, phases[t], &b);
        free_buffers(&b);
    }
    for (size_t i = 0; i < group_count; i++)
        for (size_t k = 0; k < groups[i].count; k++)
            harness_summarize(&groups[i].cands[k]);

    print_header(&o);
    for (int t = 0; t < phase_count; t++)
        for (int op = 0; op < OP_COUNT; op++)
            print_speed_table(&o, (bench_op)op, phases[t]);
    print_per_call_table(&o);
    print_accuracy_table(&o);
    print_edge_table(&o);
    if (o.csv_path != NULL)
        write_csv(&o);
    size_t probes, slow, waited;
    harness_probe_counts(&probes, &slow, &waited);
    fprintf(stderr, "softmax_bench: %.0f s, %zu probes, %zu judged slow when taken, %zu samples waited for a core\n",
            (fast_state_now_ns() - start) / 1e9, probes, slow, waited);
    return 0;
}
