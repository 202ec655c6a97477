/*
 * replay_main.c -- runs a fuzz target over files without libFuzzer, so that
 * the committed corpus replays as an ordinary test in every build (gcc,
 * sanitizers, valgrind).
 *
 *   fuzz_<target>_replay PATH...
 *
 * A PATH that is a directory contributes the regular files directly inside
 * it (not its sub-directories). A failed
 * contract check aborts, so the exit status says whether every input passed.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int replay_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    uint8_t *data = NULL;
    size_t size = 0, capacity = 0;
    for (;;) {
        if (size == capacity) {
            capacity = capacity ? 2 * capacity : 4096;
            uint8_t *grown = realloc(data, capacity);
            if (grown == NULL) {
                free(data);
                fclose(file);
                return 1;
            }
            data = grown;
        }
        const size_t got = fread(data + size, 1, capacity - size, file);
        if (got == 0)
            break;
        size += got;
    }
    fclose(file);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int is_regular_file(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 && S_ISREG(info.st_mode);
}

int main(int argc, char **argv)
{
    size_t replayed = 0;
    int failures = 0;
    /* SOFTMAX_ISA forcing a path this CPU lacks: every call would fail, so
     * report "skipped" as the other per-path tests do. */
    if (softmax_isa_name() == NULL) {
        printf("skipped: %s\n", softmax_last_error());
        return 77;
    }
    for (int a = 1; a < argc; a++) {
        if (is_regular_file(argv[a])) {
            failures += replay_file(argv[a]);
            replayed++;
            continue;
        }
        DIR *dir = opendir(argv[a]);
        if (dir == NULL) {
            fprintf(stderr, "cannot open %s\n", argv[a]);
            return 1;
        }
        for (struct dirent *entry; (entry = readdir(dir)) != NULL;) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[a], entry->d_name);
            if (!is_regular_file(path))
                continue;
            failures += replay_file(path);
            replayed++;
        }
        closedir(dir);
    }
    printf("replayed %zu inputs\n", replayed);
    /* An empty corpus would make the test pass without testing anything. */
    return failures != 0 || replayed == 0;
}
