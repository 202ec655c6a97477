/*
 * fuzz_cli.h -- what the targets of the command's readers (fuzz_text,
 * fuzz_npy) share: the command's cli_error, which lives in options.c with
 * the option parser, here keeps the last message for the checks instead of
 * printing it (tests/cli/test_text.c uses it too). Include it in one
 * translation unit of a program only (it defines the function).
 */
#ifndef SOFTMAX_FUZZ_CLI_H
#define SOFTMAX_FUZZ_CLI_H

#include <stdarg.h>
#include <stdio.h>

#include "../cli/cli.h"

static char last_message[512];

void cli_error(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(last_message, sizeof last_message, format, arguments);
    va_end(arguments);
}

#endif /* SOFTMAX_FUZZ_CLI_H */
