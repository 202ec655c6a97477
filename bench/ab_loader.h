/*
 * ab_loader.h -- one build of libsoftmax.so opened with dlopen, for the
 * tools that time two builds side by side in one process (ab_libraries.c,
 * axis_ab.c, latency_ab.c). Neither build is linked: each is loaded with
 * RTLD_LOCAL, so both sets of the same symbol names live in one process.
 *
 * Header only, so that every tool still builds from its one source file
 * (cc -O2 -Iinclude bench/TOOL.c -o TOOL -ldl -lm) as well as through
 * bench/CMakeLists.txt.
 */
#ifndef SOFTMAX_BENCH_AB_LOADER_H
#define SOFTMAX_BENCH_AB_LOADER_H

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "softmax.h"

typedef int (*f32_entry)(const float *, float *, size_t, size_t, float);
typedef int (*f64_entry)(const double *, double *, size_t, size_t, double);

/* The entry points the A/B tools call, resolved in one loaded build. */
typedef struct library {
    const char *path;
    void *handle;
    int (*desc_init)(softmax_desc *, softmax_op, softmax_dtype, size_t);
    int (*execute)(const softmax_desc *, const void *, const void *, void *);
    int (*set_num_threads)(int);
    f32_entry f32[2]; /* softmax_f32, log_softmax_f32 */
    f64_entry f64[2]; /* softmax_f64, log_softmax_f64 */
} library;

static void *library_symbol(const library *lib, const char *tool, const char *name)
{
    void *address = dlsym(lib->handle, name);
    if (address == NULL) {
        fprintf(stderr, "%s: %s lacks %s\n", tool, lib->path, name);
        exit(2);
    }
    return address;
}

/* Opens the build at `path` into `lib`; on failure says why, prefixed by
 * `tool`, and exits with status 2. */
static void load_library(library *lib, const char *path, const char *tool)
{
    lib->path = path;
    lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib->handle == NULL) {
        fprintf(stderr, "%s: %s\n", tool, dlerror());
        exit(2);
    }
    /* Stored through the pointer's bytes: ISO C does not define a cast from
     * an object pointer (what dlsym returns) to a function pointer. */
    *(void **)&lib->desc_init = library_symbol(lib, tool, "softmax_desc_init");
    *(void **)&lib->execute = library_symbol(lib, tool, "softmax_execute");
    *(void **)&lib->set_num_threads = library_symbol(lib, tool, "softmax_set_num_threads");
    *(void **)&lib->f32[0] = library_symbol(lib, tool, "softmax_f32");
    *(void **)&lib->f32[1] = library_symbol(lib, tool, "log_softmax_f32");
    *(void **)&lib->f64[0] = library_symbol(lib, tool, "softmax_f64");
    *(void **)&lib->f64[1] = library_symbol(lib, tool, "log_softmax_f64");
}

#endif
