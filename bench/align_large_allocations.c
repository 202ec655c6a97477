/*
 * align_large_allocations.c -- an LD_PRELOAD for the A/B tools
 * (ab_libraries, axis_ab, latency_ab): every allocation of at least 4 KiB
 * starts on a 4096-byte boundary.
 *
 *     cc -O2 -shared -fPIC bench/align_large_allocations.c -o align_large_allocations.so
 *     LD_PRELOAD=./align_large_allocations.so ab_libraries A.so B.so 21
 *
 * Why: each library keeps its own workspace, and where the allocator puts
 * it relative to the benchmark's buffers depends on which library is
 * called first. On 1024x4096 that alone moves a library against a copy of
 * itself by 0.89-1.13x; with both workspaces page-aligned the same
 * comparison reads 0.97-1.02. Memory from memalign is freed by free().
 */
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

void *malloc(size_t size)
{
    if (size < 4096)
        return __libc_malloc(size);
    return __libc_memalign(4096, size);
}
