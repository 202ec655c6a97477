/*
 * workspace.c -- one scratch buffer per thread, kept between calls.
 *
 * The in-cache softmax keeps the exps' residuals of a whole row (up to
 * 1 MiB); allocating that on every call would map fresh pages each time and
 * pay a page fault per 4 KiB. The buffer grows as needed and is freed when
 * its thread exits.
 */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

typedef struct workspace {
    void *data;
    size_t size;
} workspace;

static _Thread_local workspace thread_workspace;
static pthread_key_t workspace_key;
static pthread_once_t workspace_key_once = PTHREAD_ONCE_INIT;

static void free_workspace(void *unused)
{
    (void)unused;
    free(thread_workspace.data);
    thread_workspace.data = NULL;
    thread_workspace.size = 0;
}

static void create_workspace_key(void)
{
    pthread_key_create(&workspace_key, free_workspace);
}

void *softmax_workspace(size_t bytes)
{
    if (thread_workspace.size >= bytes)
        return thread_workspace.data;
    pthread_once(&workspace_key_once, create_workspace_key);
    void *grown = malloc(bytes);
    if (grown == NULL)
        return NULL;
    free(thread_workspace.data);
    thread_workspace.data = grown;
    thread_workspace.size = bytes;
    /* Any non-NULL value makes the destructor run at thread exit. */
    pthread_setspecific(workspace_key, &thread_workspace);
    return grown;
}
