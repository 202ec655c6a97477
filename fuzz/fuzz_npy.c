/*
 * fuzz_npy.c -- the command's .npy reader (cli/npy.c, cli_npy_parse) on
 * whole files held in memory.
 *
 * Input: [mode][...]. Mode even: the rest is the file, raw (every header
 * byte hostile). Mode odd: the rest describes a file that this target
 * writes itself -- format version, key order, quotes, spacing, 'descr',
 * 'fortran_order', the shape tuple (up to 9 entries, extents from 0 to
 * beyond 2^64) and how much data follows -- so that the outcome is known
 * in advance. Checked:
 *  - no crash, no read outside the file (ASan: the file is its own
 *    allocation of exactly its size);
 *  - on success: the dtype is float16/32/64 as in 'descr', C order, the
 *    data lies inside the file right after the header and holds count
 *    elements, count is the product of the shape (a 0-d array is one
 *    element), and for described files dtype, ndim, shape and data offset
 *    are exactly what was written;
 *  - described files succeed exactly when they should (supported
 *    type in either byte order, swapped when it is not the host's, extents
 *    and byte size within numpy's intp, fortran_order False, at most 8 dimensions, no
 *    overflow, enough data), and a failure reports "<path>: ...";
 *  - cli_npy_header's own headers parse back to the same dtype and shape.
 */
#include <stdarg.h>

#include "fuzz_cli.h"
#include "fuzz_common.h"

static const char path[] = "fuzz.npy";

/* Parses a private copy of exactly `size` bytes: ASan then sees any read
 * past the end of the file. */
static int parse_copy(const uint8_t *bytes, size_t size, cli_npy *npy, uint8_t **copy)
{
    *copy = malloc(size ? size : 1);
    if (size)
        memcpy(*copy, bytes, size);
    last_message[0] = '\0';
    const int status = cli_npy_parse(path, *copy, size, npy);
    if (status != 0) {
        FUZZ_CHECK(status == CLI_EX_DATAERR || status == CLI_EX_OSERR, "cli_npy_parse returned %d", status);
        FUZZ_CHECK(strncmp(last_message, "fuzz.npy: ", 10) == 0 || strcmp(last_message, "out of memory") == 0,
                   "a failure without a message naming the file: '%s'", last_message);
    }
    return status;
}

/* What every successful parse must satisfy, whatever the input. */
static void check_success(const uint8_t *file, size_t size, const cli_npy *npy)
{
    const uint8_t *bytes = file;
    FUZZ_CHECK(size >= 10 && memcmp(bytes, "\x93NUMPY", 6) == 0, "success without the magic string");
    FUZZ_CHECK(bytes[6] >= 1 && bytes[6] <= 3, "success with format version %d", bytes[6]);
    const size_t prefix = bytes[6] == 1 ? 10 : 12;
    const size_t header =
        bytes[6] == 1 ? (size_t)bytes[8] | (size_t)bytes[9] << 8
                      : (size_t)bytes[8] | (size_t)bytes[9] << 8 | (size_t)bytes[10] << 16 | (size_t)bytes[11] << 24;
    FUZZ_CHECK(prefix + header <= size, "success with a header past the end");
    FUZZ_CHECK((const uint8_t *)npy->data == bytes + prefix + header, "data is not right after the header");
    FUZZ_CHECK(npy->mapping == NULL, "cli_npy_parse set a mapping");
    FUZZ_CHECK(npy->dtype == SOFTMAX_DTYPE_F16 || npy->dtype == SOFTMAX_DTYPE_F32 || npy->dtype == SOFTMAX_DTYPE_F64,
               "success with dtype %d", npy->dtype);
    FUZZ_CHECK(npy->ndim >= 1 && npy->ndim <= SOFTMAX_MAX_NDIM, "success with ndim %d", npy->ndim);
    size_t count = 1;
    for (int d = 0; d < npy->ndim; d++) {
        FUZZ_CHECK(npy->shape[d] == 0 || count <= SIZE_MAX / npy->shape[d], "the shape's product overflows");
        count *= npy->shape[d];
    }
    FUZZ_CHECK(count == npy->count, "count %zu is not the product of the shape (%zu)", npy->count, count);
    const size_t element = cli_dtype_size(npy->dtype);
    FUZZ_CHECK(npy->count <= (size - prefix - header) / element, "the data runs past the end of the file");
    /* The header names that type, in any byte order, in C order. */
    char *dict = malloc(header + 1);
    memcpy(dict, bytes + prefix, header);
    dict[header] = '\0';
    const char *code = npy->dtype == SOFTMAX_DTYPE_F16 ? "f2" : npy->dtype == SOFTMAX_DTYPE_F32 ? "f4" : "f8";
    FUZZ_CHECK(strstr(dict, code) != NULL && strstr(dict, "descr") != NULL, "dtype %d not named in the header",
               npy->dtype);
    FUZZ_CHECK(strstr(dict, "False") != NULL && strstr(dict, "fortran_order") != NULL,
               "success without fortran_order False");
    free(dict);
    /* Every element is readable (ASan checks the bounds). */
    volatile uint8_t sink = 0;
    const uint8_t *data = npy->data;
    for (size_t i = 0; i < npy->count * element; i += 61)
        sink ^= data[i];
    if (npy->count)
        sink ^= data[npy->count * element - 1];
    (void)sink;
}

typedef struct builder {
    char text[1536];
    size_t length;
} builder;

static void append(builder *b, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void append(builder *b, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    const int n = vsnprintf(b->text + b->length, sizeof b->text - b->length, format, arguments);
    va_end(arguments);
    if (n > 0)
        b->length += (size_t)n < sizeof b->text - b->length ? (size_t)n : sizeof b->text - b->length - 1;
}

static void run_described(fuzz_reader *r)
{
    static const char *const descrs[] = {"<f4", "<f8",  "<f2", "=f4", "|f8", "f2",   ">f4",
                                         "<i4", "<f16", "<c8", "|u1", ">f8", "<f4 ", "f8"};
    static const softmax_dtype descr_types[] = {SOFTMAX_DTYPE_F32,
                                                SOFTMAX_DTYPE_F64,
                                                SOFTMAX_DTYPE_F16,
                                                SOFTMAX_DTYPE_F32,
                                                SOFTMAX_DTYPE_F64,
                                                SOFTMAX_DTYPE_F16,
                                                SOFTMAX_DTYPE_F32,
                                                0,
                                                0,
                                                0,
                                                0,
                                                SOFTMAX_DTYPE_F64,
                                                0,
                                                SOFTMAX_DTYPE_F64};
    const uint8_t version_byte = take_u8(r), layout = take_u8(r), descr_byte = take_u8(r), order_byte = take_u8(r);
    const int version = 1 + version_byte % 3;
    const size_t descr_index = descr_byte % (sizeof descrs / sizeof descrs[0]);
    const int fortran = order_byte % 4 == 3;
    const int ndim = take_u8(r) % 10;
    unsigned long long shape[10];
    char extent_text[10][32];
    int extents_valid = 1;
    for (int d = 0; d < ndim; d++) {
        const uint8_t kind = take_u8(r);
        if (kind < 160)
            shape[d] = kind % 8;
        else if (kind < 240)
            shape[d] = take_u16(r) % 5000;
        else
            shape[d] = take_u64(r);
        snprintf(extent_text[d], sizeof extent_text[d], "%llu", shape[d]);
        if (kind == 0xff) { /* beyond 2^64: strtoull says ERANGE */
            snprintf(extent_text[d], sizeof extent_text[d], "%llu0", shape[d] | 1ull << 63);
            extents_valid = 0;
        }
        if (kind == 0xfe) { /* negative */
            snprintf(extent_text[d], sizeof extent_text[d], "-%llu", shape[d] % 100);
            extents_valid = 0;
        }
    }
    const char quote = layout & 1 ? '"' : '\'';
    const char *space = layout & 2 ? " " : "";
    const int trailing_comma = ndim == 1 || (layout & 4);
    const int permutation = (layout >> 3) % 6;
    builder entries[3] = {{{0}, 0}, {{0}, 0}, {{0}, 0}};
    append(&entries[0], "%cdescr%c:%s'%s'", quote, quote, space, descrs[descr_index]);
    append(&entries[1], "%cfortran_order%c:%s%s", quote, quote, space, fortran ? "True" : "False");
    append(&entries[2], "%cshape%c:%s(", quote, quote, space);
    for (int d = 0; d < ndim; d++)
        append(&entries[2], "%s%s", d ? (layout & 0x40 ? " , " : ", ") : "", extent_text[d]);
    append(&entries[2], "%s)", trailing_comma && ndim > 0 ? "," : "");
    static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    builder dict = {{0}, 0};
    append(&dict, "{");
    for (int k = 0; k < 3; k++)
        append(&dict, "%s%s", k ? ", " : "", entries[orders[permutation][k]].text);
    append(&dict, "%s}", layout & 0x80 ? ", " : "");
    const size_t prefix = version == 1 ? 10 : 12;
    size_t header = dict.length + 1; /* the newline */
    const size_t pad = take_u8(r) % 4 == 0 ? 0 : (64 - (prefix + header) % 64) % 64;
    header += pad;

    /* The data: what the shape needs, or fewer / more bytes. */
    size_t count = 1;
    int overflow = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] != 0 && count > SIZE_MAX / shape[d])
            overflow = 1;
        if (!overflow)
            count *= (size_t)shape[d];
    }
    const softmax_dtype type = descr_types[descr_index];
    const size_t element = type ? cli_dtype_size(type) : 4;
    const uint8_t data_byte = take_u8(r);
    size_t data_bytes = overflow || count > 4096 ? 64 : count * element;
    if (data_byte % 4 == 1 && data_bytes > 0)
        data_bytes -= 1 + data_byte % (data_bytes < 8 ? data_bytes : 8); /* truncated */
    else if (data_byte % 4 == 2)
        data_bytes += data_byte; /* trailing bytes: allowed */
    const size_t size = prefix + header + data_bytes;
    uint8_t *file = malloc(size);
    memcpy(file, "\x93NUMPY", 6);
    file[6] = (uint8_t)version;
    file[7] = 0;
    file[8] = (uint8_t)header;
    file[9] = (uint8_t)(header >> 8);
    if (version > 1) {
        file[10] = (uint8_t)(header >> 16);
        file[11] = (uint8_t)(header >> 24);
    }
    memcpy(file + prefix, dict.text, dict.length);
    memset(file + prefix + dict.length, ' ', pad);
    file[prefix + header - 1] = '\n';
    for (size_t i = 0; i < data_bytes; i++)
        file[prefix + header + i] = take_u8(r);
    const int header_fits = version > 1 || header <= 0xffff;

    /* numpy's limits: every extent within intp, and the non-zero extents'
     * product in bytes too (an empty array keeps a loadable shape). */
    int numpy_loads = 1;
    unsigned long long nonzero_bytes = element;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] > (unsigned long long)INT64_MAX)
            numpy_loads = 0;
        else if (shape[d] != 0 && nonzero_bytes > (unsigned long long)INT64_MAX / shape[d])
            numpy_loads = 0;
        else if (shape[d] != 0)
            nonzero_bytes *= shape[d];
    }
    const int expect_ok = header_fits && type != 0 && !fortran && ndim <= SOFTMAX_MAX_NDIM && extents_valid &&
                          numpy_loads && !overflow && count <= data_bytes / element;
    cli_npy npy;
    uint8_t *copy;
    const int status = parse_copy(file, size, &npy, &copy);
    FUZZ_CHECK((status == 0) == expect_ok, "described .npy (version %d, descr %s, fortran %d, ndim %d): status %d (%s)",
               version, descrs[descr_index], fortran, ndim, status, last_message);
    if (status == 0) {
        check_success(copy, size, &npy);
        FUZZ_CHECK(npy.dtype == type, "dtype %d, the header says %s", npy.dtype, descrs[descr_index]);
        const char order = descrs[descr_index][0];
        const int file_is_little = order == '<' ? 1 : order == '>' ? 0 : cli_host_is_little_endian();
        FUZZ_CHECK(npy.swap == (file_is_little != cli_host_is_little_endian()), "byte swap %d for descr %s", npy.swap,
                   descrs[descr_index]);
        FUZZ_CHECK(npy.ndim == (ndim ? ndim : 1), "ndim %d, the header has %d", npy.ndim, ndim);
        for (int d = 0; d < ndim; d++)
            FUZZ_CHECK(npy.shape[d] == shape[d], "extent %d is %zu, the header says %llu", d, npy.shape[d], shape[d]);
        if (ndim == 0)
            FUZZ_CHECK(npy.shape[0] == 1 && npy.count == 1, "a 0-d array is not one element");
        FUZZ_CHECK((const uint8_t *)npy.data == copy + prefix + header, "data offset %td, expected %zu",
                   (const uint8_t *)npy.data - copy, prefix + header);
    }
    free(copy);
    free(file);

    /* The command's own header writer, read back. */
    if (type != 0 && ndim >= 1 && ndim <= SOFTMAX_MAX_NDIM && extents_valid) {
        size_t extents[SOFTMAX_MAX_NDIM];
        for (int d = 0; d < ndim; d++)
            extents[d] = (size_t)(shape[d] % 160); /* no product overflows */
        char written[CLI_NPY_HEADER_ROOM + 64];
        const size_t length = cli_npy_header(written, type, ndim, extents, 0);
        if (length != 0) {
            FUZZ_CHECK(length % 64 == 0 && length <= CLI_NPY_HEADER_ROOM, "cli_npy_header wrote %zu bytes", length);
            /* Header only: enough data only if an extent is 0. */
            int has_zero = 0;
            for (int d = 0; d < ndim; d++)
                has_zero |= extents[d] == 0;
            uint8_t *again;
            cli_npy back;
            const int back_status = parse_copy((const uint8_t *)written, length, &back, &again);
            FUZZ_CHECK((back_status == 0) == has_zero, "cli_npy_header's header (no data) parsed with status %d: %s",
                       back_status, last_message);
            if (back_status == 0) {
                FUZZ_CHECK(back.dtype == type && back.ndim == ndim && back.count == 0,
                           "header round trip: other array");
                for (int d = 0; d < ndim; d++)
                    FUZZ_CHECK(back.shape[d] == extents[d], "header round trip: extent %d", d);
            }
            free(again);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader reader = {data, size, 0};
    if (size > 0 && (data[0] & 1)) {
        reader.pos = 1;
        run_described(&reader);
        return 0;
    }
    cli_npy npy;
    uint8_t *copy;
    const size_t skip = size > 0 ? 1 : 0;
    if (parse_copy(data + skip, size - skip, &npy, &copy) == 0)
        check_success(copy, size - skip, &npy);
    free(copy);
    return 0;
}
