/*
 * output.c -- where results go: standard output, or a file written under a
 * temporary name next to it and renamed over it only once complete, so that
 * an error or an interrupt never leaves a half-written result behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define SINK_CAPACITY (1u << 20)

/* The temporary file being written, for the signal handler to remove. Only
 * one output file exists per run. */
static volatile sig_atomic_t temp_active;
static char temp_for_signal[4096];

static void remove_temp_and_die(int signal_number)
{
    if (temp_active) {
        unlink(temp_for_signal);
    }
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

static int sink_init(cli_sink *sink, int fd)
{
    memset(sink, 0, sizeof *sink);
    sink->fd = fd;
    sink->capacity = SINK_CAPACITY;
    sink->buffer = malloc(sink->capacity);
    if (sink->buffer == NULL) {
        cli_error("out of memory");
        return CLI_EX_OSERR;
    }
    return 0;
}

int cli_sink_open_stdout(cli_sink *sink)
{
    return sink_init(sink, STDOUT_FILENO);
}

int cli_sink_open_file(cli_sink *sink, const char *path)
{
    /* A device or a pipe (-o /dev/stdout, -o /dev/null, a FIFO) is written in
     * place: there is nothing to rename, and renaming over it would be wrong. */
    struct stat info;
    if (stat(path, &info) == 0 && !S_ISREG(info.st_mode)) {
        int fd = open(path, O_WRONLY);
        if (fd < 0) {
            cli_error("%s: cannot open the output: %s", path, strerror(errno));
            return CLI_EX_CANTCREAT;
        }
        int status = sink_init(sink, fd);
        sink->target = path;
        return status;
    }
    size_t length = strlen(path);
    char *temp = malloc(length + 16);
    if (temp == NULL) {
        cli_error("out of memory");
        return CLI_EX_OSERR;
    }
    snprintf(temp, length + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(temp);
    if (fd < 0) {
        cli_error("%s: cannot create the output file: %s", path, strerror(errno));
        free(temp);
        return CLI_EX_CANTCREAT;
    }
    /* mkstemp makes the file private (0600); give it the usual permissions. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    if (length + 16 <= sizeof temp_for_signal) {
        memcpy(temp_for_signal, temp, length + 16);
        temp_active = 1;
        signal(SIGINT, remove_temp_and_die);
        signal(SIGTERM, remove_temp_and_die);
        signal(SIGHUP, remove_temp_and_die);
        signal(SIGPIPE, remove_temp_and_die);
    }
    int status = sink_init(sink, fd);
    if (status != 0) {
        close(fd);
        unlink(temp);
        free(temp);
        return status;
    }
    sink->target = path;
    sink->temp_path = temp;
    return 0;
}

static void write_all(cli_sink *sink, const char *data, size_t size)
{
    while (size > 0 && !sink->failed) {
        ssize_t written = write(sink->fd, data, size);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* A closed pipe downstream (`softmax big | head`) normally
             * ends the process by SIGPIPE, quietly, before write returns;
             * EPIPE arrives only when SIGPIPE is ignored, and then it is a
             * write error like any other: reported, exit status 74. */
            cli_error("%s: write failed: %s", sink->target ? sink->target : "standard output", strerror(errno));
            sink->failed = 1;
            return;
        }
        data += written;
        size -= (size_t)written;
    }
}

int cli_sink_flush(cli_sink *sink)
{
    write_all(sink, sink->buffer, sink->used);
    sink->used = 0;
    return sink->failed ? CLI_EX_IOERR : 0;
}

void cli_sink_write(cli_sink *sink, const void *data, size_t size)
{
    if (sink->used + size > sink->capacity) {
        cli_sink_flush(sink);
        if (size > sink->capacity) {
            write_all(sink, data, size);
            return;
        }
    }
    memcpy(sink->buffer + sink->used, data, size);
    sink->used += size;
}

char *cli_sink_reserve(cli_sink *sink, size_t size)
{
    if (sink->used + size > sink->capacity) {
        cli_sink_flush(sink);
    }
    return sink->buffer + sink->used;
}

int cli_sink_commit(cli_sink *sink)
{
    int status = cli_sink_flush(sink);
    free(sink->buffer);
    sink->buffer = NULL;
    if (sink->temp_path == NULL) {
        if (sink->target != NULL && close(sink->fd) != 0 && status == 0) {
            cli_error("%s: write failed: %s", sink->target, strerror(errno));
            status = CLI_EX_IOERR;
        }
        return status;
    }
    if (status == 0 && close(sink->fd) != 0) {
        cli_error("%s: write failed: %s", sink->target, strerror(errno));
        status = CLI_EX_IOERR;
        unlink(sink->temp_path);
    } else if (status == 0 && rename(sink->temp_path, sink->target) != 0) {
        cli_error("%s: cannot replace the output file: %s", sink->target, strerror(errno));
        status = CLI_EX_CANTCREAT;
        unlink(sink->temp_path);
    } else if (status != 0) {
        close(sink->fd);
        unlink(sink->temp_path);
    }
    temp_active = 0;
    free(sink->temp_path);
    sink->temp_path = NULL;
    return status;
}

void cli_sink_abandon(cli_sink *sink)
{
    if (sink->temp_path != NULL) {
        close(sink->fd);
        unlink(sink->temp_path);
        temp_active = 0;
        free(sink->temp_path);
        sink->temp_path = NULL;
    }
    free(sink->buffer);
    sink->buffer = NULL;
}

/* .npy output: the headers say little-endian ('<') on every host. */
void cli_sink_write_little_endian(cli_sink *sink, const void *values, size_t count, size_t element_size)
{
    if (cli_host_is_little_endian()) {
        cli_sink_write(sink, values, count * element_size);
        return;
    }
    unsigned char swapped[4096];
    size_t per_block = sizeof swapped / element_size;
    const unsigned char *bytes = values;
    for (size_t done = 0; done < count;) {
        size_t n = count - done < per_block ? count - done : per_block;
        memcpy(swapped, bytes + done * element_size, n * element_size);
        cli_swap_bytes(swapped, n, element_size);
        cli_sink_write(sink, swapped, n * element_size);
        done += n;
    }
}

void cli_sink_format_number(cli_sink *sink, const char *format, double value)
{
    /* Whatever the width and precision: formatted in the buffer when it fits
     * (the usual case), else in a buffer of its own -- never cut. */
    char *slot = cli_sink_reserve(sink, 64);
    size_t room = sink->capacity - sink->used;
    int length = snprintf(slot, room, format, value);
    if (length >= 0 && (size_t)length < room) {
        sink->used += (size_t)length;
        return;
    }
    char *text = length >= 0 ? malloc((size_t)length + 1) : NULL;
    if (text == NULL) {
        cli_error("--format: cannot format %g with '%s'", value, format);
        sink->failed = 1;
        return;
    }
    snprintf(text, (size_t)length + 1, format, value);
    cli_sink_write(sink, text, (size_t)length);
    free(text);
}
