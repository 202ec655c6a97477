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

/* Slot 0 belongs to the kernels, slot 1 to the general pipeline that feeds
 * them gathered lines: a kernel growing its buffer must not free the lines
 * it is working on. */
#define WORKSPACE_SLOTS 2
static _Thread_local workspace thread_workspaces[WORKSPACE_SLOTS];
static pthread_key_t workspace_key;
static pthread_once_t workspace_key_once = PTHREAD_ONCE_INIT;

static void free_workspaces(void *unused)
{
    (void)unused;
    for (int slot = 0; slot < WORKSPACE_SLOTS; slot++) {
        free(thread_workspaces[slot].data);
        thread_workspaces[slot].data = NULL;
        thread_workspaces[slot].size = 0;
    }
}

static void create_workspace_key(void)
{
    pthread_key_create(&workspace_key, free_workspaces);
}

void *softmax_workspace_slot(int slot, size_t bytes)
{
    workspace *space = &thread_workspaces[slot];
    if (space->size >= bytes)
        return space->data;
    pthread_once(&workspace_key_once, create_workspace_key);
    void *grown = malloc(bytes);
    if (grown == NULL)
        return NULL;
    free(space->data);
    space->data = grown;
    space->size = bytes;
    /* Any non-NULL value makes the destructor run at thread exit. */
    pthread_setspecific(workspace_key, thread_workspaces);
    return grown;
}

void *softmax_workspace(size_t bytes)
{
    return softmax_workspace_slot(0, bytes);
}
