/*
 * preconditions.h -- SOFTMAX_ASSERT(cond): the preconditions of the kernel
 * tables' entry points (src/internal.h documents them), checked in the
 * sanitizer build and compiled out everywhere else.
 *
 * Active when the translation unit is built with AddressSanitizer
 * (SOFTMAX_SANITIZE=ON: gcc defines __SANITIZE_ADDRESS__, clang has
 * __has_feature(address_sanitizer)) or with -DSOFTMAX_ENABLE_ASSERTS; a
 * failed check prints the condition and its place, then aborts. Otherwise
 * the condition is neither evaluated nor compiled into code (only
 * type-checked, inside sizeof), so a Release build keeps its bits and its
 * speed. Conditions must have no side effects.
 */
#ifndef SOFTMAX_KERNEL_PRECONDITIONS_H
#define SOFTMAX_KERNEL_PRECONDITIONS_H

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOFTMAX_ASSERTS_ACTIVE 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(SOFTMAX_ENABLE_ASSERTS)
#ifndef SOFTMAX_ASSERTS_ACTIVE
#define SOFTMAX_ASSERTS_ACTIVE 1
#endif
#endif

#if defined(SOFTMAX_ASSERTS_ACTIVE)
#include <stdio.h>
#include <stdlib.h>
#define SOFTMAX_ASSERT(cond)                                                                                           \
    ((cond) ? (void)0                                                                                                  \
            : (fprintf(stderr, "%s:%d: %s: precondition failed: %s\n", __FILE__, __LINE__, __func__, #cond), abort()))
#else
#define SOFTMAX_ASSERT(cond) ((void)sizeof((cond) ? 1 : 0))
#endif

#endif /* SOFTMAX_KERNEL_PRECONDITIONS_H */
