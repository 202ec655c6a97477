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
static const char *volatile temp_for_signal;

void cli_sink_remove_temp_for_signal(void)
{
    if (temp_active) {
        unlink(temp_for_signal);
    }
}

static void remove_temp_and_die(int signal_number)
{
    cli_sink_remove_temp_for_signal();
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

/* The signals that end the command (removing the temporary file first). */
static const int ending_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};

/* Blocks or unblocks them: from the temporary file's creation until the
 * handler knows its name, an interrupt would leave the file behind. */
static void block_ending_signals(int how, sigset_t *previous)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof ending_signals / sizeof ending_signals[0]; i++) {
        sigaddset(&set, ending_signals[i]);
    }
    sigprocmask(how, how == SIG_SETMASK ? previous : &set, how == SIG_SETMASK ? NULL : previous);
}

/* The handler for each of them, but for a signal the command was started
 * ignoring: `nohup softmax ... -o FILE &` must outlive the hangup, and a
 * background job of a script ignores Ctrl-C. */
static void catch_ending_signals(void)
{
    for (size_t i = 0; i < sizeof ending_signals / sizeof ending_signals[0]; i++) {
        struct sigaction current;
        if (sigaction(ending_signals[i], NULL, &current) == 0 && current.sa_handler == SIG_IGN) {
            continue;
        }
        signal(ending_signals[i], remove_temp_and_die);
    }
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

/* The file descriptor a name stands for: 1 for /dev/stdout, N for
 * /dev/fd/N and /proc/self/fd/N (0 and 2 for /dev/stdin and /dev/stderr);
 * -1 for any other name. */
static int named_descriptor(const char *path)
{
    static const char *const streams[] = {"/dev/stdin", "/dev/stdout", "/dev/stderr"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(path, streams[i]) == 0) {
            return i;
        }
    }
    const char *digits = strncmp(path, "/dev/fd/", 8) == 0          ? path + 8
                         : strncmp(path, "/proc/self/fd/", 14) == 0 ? path + 14
                                                                    : NULL;
    if (digits == NULL || *digits == '\0' || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 9) {
        return -1;
    }
    return atoi(digits);
}

/* The file a path names, through any chain of symbolic links (a dangling
 * link names the file it would create). NULL after reporting an error, or
 * when a link leads to one of the process's file descriptors
 * (/proc/self/fd/N, which is where /dev/stdout leads): then *descriptor is N,
 * else -1. */
static char *resolve_links(const char *path, int *descriptor)
{
    char *current = strdup(path);
    *descriptor = -1;
    for (int depth = 0; current != NULL; depth++) {
        struct stat info;
        if (depth > 0 && (*descriptor = named_descriptor(current)) >= 0) {
            free(current);
            return NULL;
        }
        if (lstat(current, &info) != 0 || !S_ISLNK(info.st_mode)) {
            return current;
        }
        if (depth == 40) {
            cli_error("%s: cannot open the output: %s", path, strerror(ELOOP));
            free(current);
            return NULL;
        }
        size_t room = (size_t)info.st_size + 1 > 256 ? (size_t)info.st_size + 1 : 256;
        char *target = malloc(room);
        ssize_t length = target != NULL ? readlink(current, target, room) : -1;
        if (length < 0 || (size_t)length >= room) {
            cli_error("%s: cannot read the symbolic link: %s", path, strerror(length < 0 ? errno : ENAMETOOLONG));
            free(target);
            free(current);
            return NULL;
        }
        target[length] = '\0';
        if (target[0] == '/') {
            free(current);
            current = target;
            continue;
        }
        /* relative to the link's directory */
        const char *slash = strrchr(current, '/');
        size_t directory = slash != NULL ? (size_t)(slash - current) + 1 : 0;
        char *joined = malloc(directory + (size_t)length + 1);
        if (joined != NULL) {
            memcpy(joined, current, directory);
            memcpy(joined + directory, target, (size_t)length + 1);
        }
        free(target);
        free(current);
        current = joined;
    }
    cli_error("out of memory");
    return NULL;
}

/* A sink written in place to fd, just opened for path (an error if fd < 0,
 * errno telling why). */
static int sink_of_opened(cli_sink *sink, int fd, const char *path)
{
    if (fd < 0) {
        cli_error("%s: cannot open the output: %s", path, strerror(errno));
        return CLI_EX_CANTCREAT;
    }
    int status = sink_init(sink, fd);
    sink->target = path;
    return status;
}

/* -o /dev/stdout, /dev/fd/N: the descriptor the command was given, written
 * in place at its offset, as `> /dev/stdout` in a shell. Following the name
 * to the file that descriptor has open and renaming a new file over it would
 * lose what was written before (`(echo x; softmax -o /dev/stdout) > f`, or
 * `>> log`); and a pipe reopened by name is the standard input's own pipe
 * for /dev/stdin, every result read back as input. */
static int open_descriptor(cli_sink *sink, const char *path, int descriptor)
{
    int flags = fcntl(descriptor, F_GETFL);
    if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY) {
        cli_error("%s: cannot write the output: %s", path,
                  flags < 0 ? strerror(errno) : "the file descriptor is open for reading only");
        return CLI_EX_CANTCREAT;
    }
    return sink_of_opened(sink, fcntl(descriptor, F_DUPFD_CLOEXEC, 3), path);
}

int cli_sink_open_file(cli_sink *sink, const char *path)
{
    int descriptor = named_descriptor(path);
    if (descriptor >= 0) {
        return open_descriptor(sink, path, descriptor);
    }
    /* A device or a pipe (-o /dev/null, a FIFO) is written in place: there is
     * nothing to rename, and renaming over it would be wrong. */
    struct stat info;
    if (stat(path, &info) == 0 && !S_ISREG(info.st_mode)) {
        return sink_of_opened(sink, open(path, O_WRONLY), path);
    }
    /* A symbolic link is followed: its target gets the result, the link
     * stays a link. */
    char *resolved = resolve_links(path, &descriptor);
    if (resolved == NULL) {
        return descriptor >= 0 ? open_descriptor(sink, path, descriptor) : CLI_EX_CANTCREAT;
    }
    int exists = stat(resolved, &info) == 0;
    /* As cp and sort -o: a file the user may not write is refused, not
     * replaced (renaming over it needs only the directory's permission). */
    if (exists && access(resolved, W_OK) != 0) {
        cli_error("%s: cannot write the output file: %s", path, strerror(errno));
        free(resolved);
        return CLI_EX_CANTCREAT;
    }
    /* The temporary file: a short name in the target's directory (the
     * target's name plus a suffix could pass NAME_MAX). */
    const char *slash = strrchr(resolved, '/');
    size_t directory = slash != NULL ? (size_t)(slash - resolved) + 1 : 0;
    static const char temp_name[] = ".softmax-output.XXXXXX";
    char *temp = malloc(directory + sizeof temp_name);
    if (temp == NULL) {
        free(resolved);
        cli_error("out of memory");
        return CLI_EX_OSERR;
    }
    memcpy(temp, resolved, directory);
    memcpy(temp + directory, temp_name, sizeof temp_name);
    int in_place = 0;
    sigset_t unblocked;
    block_ending_signals(SIG_BLOCK, &unblocked);
    int fd = mkstemp(temp);
    if (fd < 0 && exists) {
        /* A file we may write in a directory we may not (as cp writes it):
         * the result is made in the temporary directory and copied into the
         * file once complete. */
        int saved = errno;
        const char *directory_name = getenv("TMPDIR");
        if (directory_name == NULL || *directory_name == '\0') {
            directory_name = "/tmp";
        }
        char *elsewhere = malloc(strlen(directory_name) + sizeof temp_name + 1);
        if (elsewhere != NULL) {
            snprintf(elsewhere, strlen(directory_name) + sizeof temp_name + 1, "%s/%s", directory_name, temp_name);
            fd = mkstemp(elsewhere);
        }
        if (fd >= 0) {
            free(temp);
            temp = elsewhere;
            in_place = 1;
        } else {
            free(elsewhere);
            errno = saved;
        }
    }
    if (fd < 0) {
        block_ending_signals(SIG_SETMASK, &unblocked);
        cli_error("%s: cannot create the output file: %s", path, strerror(errno));
        free(temp);
        free(resolved);
        return CLI_EX_CANTCREAT;
    }
    if (exists && !in_place) {
        /* The existing file's mode and owner carry over. If they cannot (an
         * owner we may not give away), or other hard links share the file,
         * the finished result is copied into the file itself instead of
         * renamed over it, so that it stays the same file. */
        int kept = fchmod(fd, info.st_mode & 07777) == 0 &&
                   (fchown(fd, info.st_uid, info.st_gid) == 0 ||
                    (info.st_uid == geteuid() && fchown(fd, (uid_t)-1, info.st_gid) == 0) ||
                    (info.st_uid == geteuid() && info.st_gid == getegid()));
        in_place = !kept || info.st_nlink > 1;
    } else if (!exists) {
        /* mkstemp makes the file private (0600); give it the usual permissions. */
        mode_t mask = umask(0);
        umask(mask);
        fchmod(fd, 0666 & ~mask);
    }
    temp_for_signal = temp;
    temp_active = 1;
    catch_ending_signals();
    block_ending_signals(SIG_SETMASK, &unblocked);
    int status = sink_init(sink, fd);
    if (status != 0) {
        close(fd);
        unlink(temp);
        temp_active = 0;
        free(temp);
        free(resolved);
        return status;
    }
    sink->rewrite_in_place = in_place;
    sink->target = path;
    sink->resolved = resolved;
    sink->temp_path = temp;
    return 0;
}

/* length bytes of in from in_offset written to out at out_offset. 0, or -1
 * with errno set. */
static int copy_range(int in, off_t in_offset, int out, off_t out_offset, off_t length)
{
    char buffer[1 << 16];
    while (length > 0) {
        size_t want = length < (off_t)sizeof buffer ? (size_t)length : sizeof buffer;
        ssize_t got = pread(in, buffer, want, in_offset);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            errno = got < 0 ? errno : EIO; /* the file got shorter under us */
            return -1;
        }
        for (ssize_t done = 0; done < got;) {
            ssize_t put = pwrite(out, buffer + done, (size_t)(got - done), out_offset + done);
            if (put < 0 && errno != EINTR) {
                return -1;
            }
            done += put > 0 ? put : 0;
        }
        in_offset += got;
        out_offset += got;
        length -= got;
    }
    return 0;
}

/* Gives back the space past the old end of the file that a reservation or a
 * partial write took (best effort: the content is what matters), touching
 * the file only if it changed. */
static void release_beyond(int fd, const struct stat *old, off_t new_size)
{
    struct stat now;
    if (fstat(fd, &now) != 0 || (now.st_size != old->st_size && ftruncate(fd, old->st_size) != 0)) {
        return;
    }
#ifdef FALLOC_FL_PUNCH_HOLE
    if (now.st_blocks > old->st_blocks && new_size > old->st_size) {
        (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, old->st_size, new_size - old->st_size);
    }
#else
    (void)new_size;
#endif
}

/* A file with the content of fd's first `size` bytes, next to the temporary
 * file (where this run may create files). NULL after reporting an error. */
static char *make_backup(const cli_sink *sink, int fd, off_t size)
{
    static const char backup_name[] = ".softmax-backup.XXXXXX";
    const char *slash = strrchr(sink->temp_path, '/');
    size_t directory = slash != NULL ? (size_t)(slash - sink->temp_path) + 1 : 0;
    char *backup = malloc(directory + sizeof backup_name);
    if (backup == NULL) {
        cli_error("out of memory");
        return NULL;
    }
    memcpy(backup, sink->temp_path, directory);
    memcpy(backup + directory, backup_name, sizeof backup_name);
    int backup_fd = mkstemp(backup);
    if (backup_fd >= 0 && copy_range(fd, 0, backup_fd, 0, size) == 0 && close(backup_fd) == 0) {
        return backup;
    }
    int saved = errno;
    if (backup_fd >= 0) {
        close(backup_fd);
        unlink(backup);
    }
    cli_error("%s: cannot write the output file: cannot keep a copy of its content to restore on error: %s",
              sink->target, strerror(saved));
    free(backup);
    return NULL;
}

/* The finished temporary file's content copied into the target itself (the
 * same inode: its other hard links and its owner stay). Unlike a rename this
 * overwrites the old content, so that an error half-way (a full disk) would
 * leave a damaged file: the space is reserved first where the file system
 * can (a full disk is then found before anything is written), and a copy of
 * the old content is kept to put back if writing fails anyway (a copy-on-write
 * file system, one that cannot reserve, an I/O error). Exit status non-zero:
 * the file holds its old content. */
static int copy_into_target(cli_sink *sink)
{
    int in = open(sink->temp_path, O_RDONLY);
    /* read too: the backup copy is made from it */
    int out = in >= 0 ? open(sink->resolved, O_RDWR) : -1;
    struct stat result, old;
    if (out < 0 || fstat(in, &result) != 0 || fstat(out, &old) != 0) {
        if (in >= 0 && out < 0 && errno == EACCES) {
            cli_error("%s: cannot read the output file (to keep a copy of its content while it is rewritten in "
                      "place): %s",
                      sink->target, strerror(errno));
        } else {
            cli_error("%s: cannot write the output file: %s", sink->target, strerror(errno));
        }
        if (out >= 0) {
            close(out);
        }
        if (in >= 0) {
            close(in);
        }
        return CLI_EX_CANTCREAT;
    }
    off_t size = result.st_size;
    off_t old_size = old.st_size;
    /* An interrupt half-way would leave the file damaged: it waits until the
     * file is whole again (then removes the temporary file and ends). */
    sigset_t blocked, previous;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGHUP);
    sigaddset(&blocked, SIGPIPE);
    sigprocmask(SIG_BLOCK, &blocked, &previous);
    int status = 0;
    char *backup = NULL;
#ifdef FALLOC_FL_KEEP_SIZE
    /* Blocks for the whole result, the file's size unchanged. A file system
     * that cannot (EOPNOTSUPP) is left to the backup copy. */
    if (size > 0 && fallocate(out, FALLOC_FL_KEEP_SIZE, 0, size) != 0 &&
        (errno == ENOSPC || errno == EDQUOT || errno == EFBIG)) {
        cli_error("%s: cannot write the output file: %s", sink->target, strerror(errno));
        release_beyond(out, &old, size);
        status = CLI_EX_IOERR;
    }
#endif
    if (status == 0) {
        backup = make_backup(sink, out, old_size);
        status = backup != NULL ? 0 : CLI_EX_IOERR;
        if (status != 0) {
            release_beyond(out, &old, size);
        }
    }
    if (status == 0) {
        /* The part past the old end first: where a full disk is not found
         * above, it is found here, before the old bytes are overwritten. */
        off_t common = size < old_size ? size : old_size;
        int failed = (size > old_size && copy_range(in, old_size, out, old_size, size - old_size) != 0) ||
                     copy_range(in, 0, out, 0, common) != 0 || (size < old_size && ftruncate(out, size) != 0) ||
                     (fsync(out) != 0 && errno != EINVAL && errno != EROFS);
        if (failed) {
            int saved = errno;
            cli_error("%s: cannot write the output file: %s", sink->target, strerror(saved));
            status = CLI_EX_IOERR;
            int from = open(backup, O_RDONLY);
            int restored = from >= 0 && copy_range(from, 0, out, 0, old_size) == 0 && ftruncate(out, old_size) == 0 &&
                           (fsync(out) == 0 || errno == EINVAL || errno == EROFS);
            if (from >= 0) {
                close(from);
            }
            if (restored) {
                release_beyond(out, &old, size);
            } else {
                /* Nothing more can be done here: the user gets the old
                 * content back from the copy, which is kept. */
                cli_error("%s: the file is damaged: its former content is kept in %s", sink->target, backup);
                free(backup);
                backup = NULL;
            }
        }
    }
    if (backup != NULL) {
        unlink(backup);
        free(backup);
    }
    /* Write errors were reported by fsync above. */
    close(out);
    close(in);
    sigprocmask(SIG_SETMASK, &previous, NULL);
    return status;
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
    } else if (status == 0 && sink->rewrite_in_place) {
        status = copy_into_target(sink);
        unlink(sink->temp_path);
    } else if (status == 0 && rename(sink->temp_path, sink->resolved) != 0) {
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
    free(sink->resolved);
    sink->resolved = NULL;
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
    free(sink->resolved);
    sink->resolved = NULL;
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
