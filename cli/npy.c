/*
 * npy.c -- NumPy's .npy format (versions 1, 2 and 3): the magic string, a
 * little-endian header length, a Python dict literal with 'descr',
 * 'fortran_order' and 'shape', padding, then the raw C-order data.
 *
 * Input files are memory-mapped rather than read: the data is used where it
 * lies, so a file larger than memory still works and nothing is copied --
 * unless its byte order is not the host's or it is not aligned for its type,
 * and then it is copied (and swapped) a chunk at a time by cli_npy_read.
 * Byte order is always explicit: the header's length fields are read byte by
 * byte, 'descr' says '<' (little), '>' (big) or '='/'|' (the writer's native
 * order, taken as the host's), and the host's order is detected at run time.
 * Written files are always little-endian ('<'), whatever the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

const char cli_npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
#define npy_magic cli_npy_magic

size_t cli_dtype_size(softmax_dtype dtype)
{
    switch (dtype) {
    case SOFTMAX_DTYPE_F64:
        return 8;
    case SOFTMAX_DTYPE_F32:
        return 4;
    case SOFTMAX_DTYPE_F16:
    case SOFTMAX_DTYPE_BF16:
        return 2;
    }
    return 0;
}

int cli_host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first_byte;
    memcpy(&first_byte, &one, 1);
    return first_byte == 1;
}

void cli_swap_bytes(void *data, size_t count, size_t element_size)
{
    unsigned char *bytes = data;
    for (size_t i = 0; i < count; i++, bytes += element_size) {
        for (size_t low = 0, high = element_size - 1; low < high; low++, high--) {
            unsigned char kept = bytes[low];
            bytes[low] = bytes[high];
            bytes[high] = kept;
        }
    }
}

void cli_npy_read(const cli_npy *npy, size_t first, size_t count, void *dst)
{
    size_t element = cli_dtype_size(npy->dtype);
    memcpy(dst, (const unsigned char *)npy->data + first * element, count * element);
    if (npy->swap) {
        cli_swap_bytes(dst, count, element);
    }
}

int cli_is_npy_path(const char *path)
{
    size_t length = strlen(path);
    return length >= 4 && strcmp(path + length - 4, ".npy") == 0;
}

int cli_is_npy_input(const char *path)
{
    if (cli_is_npy_path(path)) {
        return 1;
    }
    /* Any other name: a regular file that starts with the magic string. */
    struct stat info;
    if (strcmp(path, "-") == 0 || stat(path, &info) != 0 || !S_ISREG(info.st_mode)) {
        return 0;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return 0;
    }
    char start[sizeof npy_magic];
    ssize_t got = read(fd, start, sizeof start);
    close(fd);
    return got == (ssize_t)sizeof start && memcmp(start, npy_magic, sizeof npy_magic) == 0;
}

static int npy_fail(const char *path, const char *what)
{
    cli_error("%s: not a .npy file this command reads: %s", path, what);
    return CLI_EX_DATAERR;
}

/* The header is a Python dict literal, read as numpy reads it (with
 * ast.literal_eval): exactly the keys 'descr', 'fortran_order' and 'shape',
 * each once, in any order; a string, True/False and a tuple of integers;
 * Python's whitespace between tokens; an optional trailing comma. Anything
 * else -- other keys, nested values, escapes, a string that merely contains
 * "descr" -- is refused rather than guessed at. */
typedef struct header_cursor {
    const char *p;
    const char *end;
} header_cursor;

static void skip_whitespace(header_cursor *c)
{
    while (c->p < c->end &&
           (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r' || *c->p == '\f' || *c->p == '\v')) {
        c->p++;
    }
}

/* A quoted string without escapes into out (at most size - 1 bytes). */
static int read_string(header_cursor *c, char *out, size_t size)
{
    skip_whitespace(c);
    if (c->p == c->end || (*c->p != '\'' && *c->p != '"')) {
        return -1;
    }
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || *c->p == '\n' || *c->p == '\0' || n + 1 >= size) {
            return -1;
        }
        out[n++] = *c->p++;
    }
    if (c->p == c->end) {
        return -1;
    }
    c->p++;
    out[n] = '\0';
    return 0;
}

static int take_char(header_cursor *c, char wanted)
{
    skip_whitespace(c);
    if (c->p < c->end && *c->p == wanted) {
        c->p++;
        return 1;
    }
    return 0;
}

static int take_word(header_cursor *c, const char *word)
{
    skip_whitespace(c);
    size_t length = strlen(word);
    if ((size_t)(c->end - c->p) >= length && memcmp(c->p, word, length) == 0) {
        const char *after = c->p + length;
        if (after == c->end || !((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') ||
                                 (*after >= '0' && *after <= '9') || *after == '_')) {
            c->p = after;
            return 1;
        }
    }
    return 0;
}

static int parse_descr(const char *path, header_cursor *c, cli_npy *npy)
{
    char type[32];
    skip_whitespace(c);
    if (c->p < c->end && (*c->p == '[' || *c->p == '(' || *c->p == '{')) {
        return npy_fail(path, "'descr' is not a simple type (structured arrays are not supported)");
    }
    if (read_string(c, type, sizeof type) != 0) {
        return npy_fail(path, "'descr' is not a quoted type string");
    }
    /* '<' little-endian, '>' big-endian, '=' the writer's native order and
     * '|' "not applicable" (numpy reads both as native): the host's. */
    int file_is_little = type[0] == '<' ? 1 : type[0] == '>' ? 0 : cli_host_is_little_endian();
    npy->swap = file_is_little != cli_host_is_little_endian();
    const char *kind = (type[0] == '<' || type[0] == '>' || type[0] == '=' || type[0] == '|') ? type + 1 : type;
    if (strcmp(kind, "f4") == 0) {
        npy->dtype = SOFTMAX_DTYPE_F32;
    } else if (strcmp(kind, "f8") == 0) {
        npy->dtype = SOFTMAX_DTYPE_F64;
    } else if (strcmp(kind, "f2") == 0) {
        npy->dtype = SOFTMAX_DTYPE_F16;
    } else {
        char message[192];
        char shown[64];
        cli_quote(shown, sizeof shown, type, strlen(type));
        snprintf(message, sizeof message, "data type %s; expected float16, float32 or float64 ('<f2', '<f4', '<f8')",
                 shown);
        return npy_fail(path, message);
    }
    return 0;
}

static int parse_shape(const char *path, header_cursor *c, cli_npy *npy)
{
    if (!take_char(c, '(')) {
        return npy_fail(path, "the header has no 'shape' tuple");
    }
    npy->ndim = 0;
    for (;;) {
        if (take_char(c, ')')) {
            break;
        }
        skip_whitespace(c);
        if (c->p == c->end || *c->p < '0' || *c->p > '9') {
            return npy_fail(path, "a 'shape' entry is not a non-negative integer");
        }
        /* numpy's extents are intp: at most 2^63 - 1. */
        uint64_t extent = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            uint64_t digit = (uint64_t)(*c->p++ - '0');
            if (extent > ((uint64_t)INT64_MAX - digit) / 10) {
                return npy_fail(path, "a 'shape' entry is larger than numpy allows (2^63 - 1)");
            }
            extent = extent * 10 + digit;
        }
        if (c->p < c->end &&
            ((*c->p >= 'a' && *c->p <= 'z') || (*c->p >= 'A' && *c->p <= 'Z') || *c->p == '_' || *c->p == '.')) {
            return npy_fail(path, "a 'shape' entry is not a non-negative integer");
        }
        if (npy->ndim == SOFTMAX_MAX_NDIM) {
            return npy_fail(path, "more than 8 dimensions");
        }
        npy->shape[npy->ndim++] = (size_t)extent;
        if (take_char(c, ',')) {
            continue;
        }
        if (take_char(c, ')')) {
            if (npy->ndim == 1) {
                /* (5) is an integer in Python, not a tuple: numpy refuses it */
                return npy_fail(path, "'shape' is not a tuple: one extent needs a trailing comma, as in (5,)");
            }
            break;
        }
        return npy_fail(path, "malformed 'shape' tuple");
    }
    return 0;
}

/* Parses the header dict into *npy (dtype, ndim, shape, count). */
static int parse_header(const char *path, const char *dict, size_t length, cli_npy *npy)
{
    header_cursor c = {dict, dict + length};
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    if (!take_char(&c, '{')) {
        return npy_fail(path, "the header is not a dict");
    }
    for (;;) {
        if (take_char(&c, '}')) {
            break;
        }
        char key[32];
        if (read_string(&c, key, sizeof key) != 0 || !take_char(&c, ':')) {
            return npy_fail(path, "the header is not a dict of quoted keys");
        }
        int status = 0;
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            seen_descr = 1;
            status = parse_descr(path, &c, npy);
        } else if (strcmp(key, "fortran_order") == 0 && !seen_order) {
            seen_order = 1;
            if (take_word(&c, "True")) {
                return npy_fail(path, "Fortran order; expected C order (numpy.ascontiguousarray)");
            }
            if (!take_word(&c, "False")) {
                return npy_fail(path, "'fortran_order' is not True or False");
            }
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            seen_shape = 1;
            status = parse_shape(path, &c, npy);
        } else {
            char shown[64];
            char message[192];
            cli_quote(shown, sizeof shown, key, strlen(key));
            snprintf(message, sizeof message, "the header has %s key %s; expected 'descr', 'fortran_order', 'shape'",
                     seen_descr + seen_order + seen_shape > 0 ? "an unexpected or repeated" : "an unexpected", shown);
            return npy_fail(path, message);
        }
        if (status != 0) {
            return status;
        }
        if (take_char(&c, ',')) {
            continue;
        }
        if (take_char(&c, '}')) {
            break;
        }
        return npy_fail(path, "the header dict is malformed (expected ',' or '}')");
    }
    skip_whitespace(&c);
    if (c.p != c.end) {
        return npy_fail(path, "the header has text after its dict");
    }
    if (!seen_descr) {
        return npy_fail(path, "the header has no 'descr'");
    }
    if (!seen_order) {
        return npy_fail(path, "the header has no 'fortran_order'");
    }
    if (!seen_shape) {
        return npy_fail(path, "the header has no 'shape' tuple");
    }
    /* As numpy: the product of the non-zero extents, in bytes, fits in intp
     * (so an empty array keeps a loadable shape). */
    uint64_t nonzero_bytes = cli_dtype_size(npy->dtype);
    npy->count = 1;
    for (int i = 0; i < npy->ndim; i++) {
        uint64_t extent = npy->shape[i];
        if (extent != 0) {
            if (nonzero_bytes > (uint64_t)INT64_MAX / extent) {
                return npy_fail(path, "the shape's byte size overflows");
            }
            nonzero_bytes *= extent;
        }
        npy->count *= (size_t)extent;
    }
    if (npy->ndim == 0) {
        /* A 0-d array is one number: a distribution over one outcome
         * (written back with the shape ()). */
        npy->scalar = 1;
        npy->ndim = 1;
        npy->shape[0] = 1;
    }
    return 0;
}

int cli_npy_parse(const char *path, const void *file, size_t size, cli_npy *npy)
{
    memset(npy, 0, sizeof *npy);
    npy->fd = -1;
    npy->watch_slot = -1;
    if (size < 10) {
        return npy_fail(path, "shorter than a .npy header");
    }
    const unsigned char *bytes = file;
    if (memcmp(bytes, npy_magic, sizeof npy_magic) != 0) {
        return npy_fail(path, "no .npy magic string at the start");
    }
    size_t header_length;
    size_t prefix;
    if (bytes[6] == 1) {
        header_length = (size_t)bytes[8] | (size_t)bytes[9] << 8;
        prefix = 10;
    } else if ((bytes[6] == 2 || bytes[6] == 3) && size >= 12) {
        header_length = (size_t)bytes[8] | (size_t)bytes[9] << 8 | (size_t)bytes[10] << 16 | (size_t)bytes[11] << 24;
        prefix = 12;
    } else {
        return npy_fail(path, "unknown .npy format version");
    }
    if (header_length > size - prefix || header_length > (1u << 20)) {
        return npy_fail(path, "the header runs past the end of the file");
    }
    int status = parse_header(path, (const char *)bytes + prefix, header_length, npy);
    if (status != 0) {
        return status;
    }
    size_t data_offset = prefix + header_length;
    size_t element = cli_dtype_size(npy->dtype);
    if (npy->count > (size - data_offset) / element) {
        char message[128];
        snprintf(message, sizeof message, "the data is truncated: the shape needs %zu bytes, the file has %zu",
                 npy->count * element, size - data_offset);
        return npy_fail(path, message);
    }
    npy->data = bytes + data_offset;
    /* numpy pads headers to 64 bytes, but a hand-made file may not: the
     * library is never handed a misaligned pointer. */
    npy->direct = !npy->swap && (uintptr_t)npy->data % element == 0;
    return 0;
}

/* A mapped file that another process truncates makes every read of the
 * mapping past its new end a SIGBUS, which would kill the command with no
 * word of why -- after a partial output. The handler below turns it into an
 * error naming the file: the fault's address is looked up among the mapped
 * inputs (a fault elsewhere keeps its default action), the message made
 * when the file was mapped is written, a temporary output file removed and
 * the process ended. It may run on any thread (the library's threads read
 * the mapping in place), so it only exits: nothing returns to the fault. */
#define WATCHED_MAPPINGS 4

typedef struct watched_mapping {
    volatile sig_atomic_t active;
    const unsigned char *volatile begin;
    volatile size_t size;
    char *volatile message;
    volatile size_t message_length;
} watched_mapping;

static watched_mapping watched[WATCHED_MAPPINGS];
/* Set by the command (the parsers alone, as the fuzz targets build them,
 * have no output file): removes a temporary output file. */
static void (*volatile fault_cleanup)(void);
/* Only the first faulting thread reports; any other waits for its exit. */
static atomic_flag fault_reported = ATOMIC_FLAG_INIT;

void cli_npy_on_fault(void (*cleanup)(void))
{
    fault_cleanup = cleanup;
}

static void input_fault(int signal_number, siginfo_t *info, void *context)
{
    (void)context;
    uintptr_t address = (uintptr_t)info->si_addr;
    for (int i = 0; i < WATCHED_MAPPINGS; i++) {
        if (watched[i].active && address - (uintptr_t)watched[i].begin < watched[i].size) {
            if (atomic_flag_test_and_set(&fault_reported)) {
                for (;;) {
                    pause();
                }
            }
            ssize_t written = write(STDERR_FILENO, watched[i].message, watched[i].message_length);
            (void)written;
            if (fault_cleanup != NULL) {
                fault_cleanup();
            }
            _exit(CLI_EX_NOINPUT);
        }
    }
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

static int watch_mapping(const char *path, const void *mapping, size_t size)
{
    static int installed;
    int slot = 0;
    while (slot < WATCHED_MAPPINGS && watched[slot].active) {
        slot++;
    }
    if (slot == WATCHED_MAPPINGS) {
        return -1;
    }
    static const char format[] =
        "softmax: %s: read failed: the file was truncated while it was read (another process changed it)\n";
    size_t length = sizeof format + strlen(path);
    char *message = malloc(length);
    if (message == NULL) {
        return -1;
    }
    snprintf(message, length, format, path);
    if (!installed) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = input_fault;
        action.sa_flags = SA_SIGINFO;
        sigemptyset(&action.sa_mask);
        if (sigaction(SIGBUS, &action, NULL) != 0) {
            free(message);
            return -1;
        }
        installed = 1;
    }
    watched[slot].begin = mapping;
    watched[slot].size = size;
    watched[slot].message = message;
    watched[slot].message_length = strlen(message);
    watched[slot].active = 1;
    return slot;
}

static void unwatch_mapping(int slot)
{
    if (slot >= 0) {
        watched[slot].active = 0;
        free(watched[slot].message);
        watched[slot].message = NULL;
    }
}

int cli_npy_open(const char *path, cli_npy *npy)
{
    memset(npy, 0, sizeof *npy);
    npy->fd = -1;
    npy->watch_slot = -1;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        cli_error("%s: cannot open: %s", path, strerror(errno));
        return CLI_EX_NOINPUT;
    }
    return cli_npy_open_fd(fd, path, npy);
}

int cli_npy_open_fd(int fd, const char *path, cli_npy *npy)
{
    memset(npy, 0, sizeof *npy);
    npy->fd = -1;
    npy->watch_slot = -1;
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        close(fd);
        cli_error("%s: a .npy input must be a regular file (it is memory-mapped)", path);
        return CLI_EX_NOINPUT;
    }
    size_t size = (size_t)info.st_size;
    if (size < 10) {
        close(fd);
        return npy_fail(path, "shorter than a .npy header");
    }
    void *mapping = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
        close(fd);
        cli_error("%s: cannot map: %s", path, strerror(errno));
        return CLI_EX_NOINPUT;
    }
    /* Watched before the header is parsed: the file may already be shorter. */
    int slot = watch_mapping(path, mapping, size);
    int status = cli_npy_parse(path, mapping, size, npy);
    if (status != 0) {
        unwatch_mapping(slot);
        munmap(mapping, size);
        close(fd);
        npy->mapping = NULL;
        return status;
    }
    npy->mapping = mapping;
    npy->mapping_size = size;
    npy->watch_slot = slot;
    npy->path = path;
    npy->fd = fd;
    npy->size_at_open = (int64_t)info.st_size;
    npy->mtime_at_open[0] = (int64_t)info.st_mtim.tv_sec;
    npy->mtime_at_open[1] = (int64_t)info.st_mtim.tv_nsec;
    /* The data is read once, front to back. */
    madvise(mapping, size, MADV_SEQUENTIAL);
    return 0;
}

int cli_npy_close(cli_npy *npy)
{
    int status = 0;
    if (npy->fd >= 0) {
        /* A file rewritten in place (same size, or truncated and written
         * again before the pages were read) gives no fault: the results
         * would silently mix old and new data. Its modification time tells. */
        struct stat info;
        if (fstat(npy->fd, &info) == 0 &&
            ((int64_t)info.st_size != npy->size_at_open || (int64_t)info.st_mtim.tv_sec != npy->mtime_at_open[0] ||
             (int64_t)info.st_mtim.tv_nsec != npy->mtime_at_open[1])) {
            cli_error("%s: read failed: the file was modified while it was read (another process changed it)",
                      npy->path);
            status = CLI_EX_NOINPUT;
        }
        close(npy->fd);
        npy->fd = -1;
    }
    if (npy->mapping != NULL) {
        munmap(npy->mapping, npy->mapping_size);
    }
    npy->mapping = NULL;
    unwatch_mapping(npy->watch_slot);
    npy->watch_slot = -1;
    return status;
}

size_t cli_npy_header(char *out, softmax_dtype dtype, int ndim, const size_t *shape, size_t header_size)
{
    const char *descr = dtype == SOFTMAX_DTYPE_F64 ? "<f8" : dtype == SOFTMAX_DTYPE_F32 ? "<f4" : "<f2";
    /* numpy loads only shapes whose non-zero extents, in bytes, fit in intp. */
    uint64_t nonzero_bytes = cli_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] > (size_t)INT64_MAX ||
            (shape[i] != 0 && nonzero_bytes > (uint64_t)INT64_MAX / (uint64_t)shape[i])) {
            return 0;
        }
        nonzero_bytes *= shape[i] != 0 ? (uint64_t)shape[i] : 1;
    }
    char dict[CLI_NPY_HEADER_ROOM];
    int length = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++) {
        length += snprintf(dict + length, sizeof dict - (size_t)length,
                           ndim == 1 ? "%zu,"
                           : i       ? ", %zu"
                                     : "%zu",
                           shape[i]);
    }
    length += snprintf(dict + length, sizeof dict - (size_t)length, "), }");
    size_t needed = 10 + (size_t)length + 1;
    size_t total = header_size ? header_size : (needed + 63) / 64 * 64;
    if (needed > total || total > CLI_NPY_HEADER_ROOM) {
        return 0;
    }
    memcpy(out, npy_magic, sizeof npy_magic);
    out[6] = 1;
    out[7] = 0;
    size_t dict_length = total - 10;
    out[8] = (char)(dict_length & 0xff);
    out[9] = (char)(dict_length >> 8);
    memcpy(out + 10, dict, (size_t)length);
    memset(out + 10 + length, ' ', dict_length - (size_t)length - 1);
    out[total - 1] = '\n';
    return total;
}
