"""End-to-end tests of the `softmax` command: the built binary is run on real
inputs and its output checked against an independent reference (mpmath at 50
digits for text rows, NumPy float64 with the max subtracted for arrays), never
against the library itself.

    SOFTMAX_CLI=build/cli/softmax /usr/bin/python3 -m unittest tests/cli/test_cli.py

ctest runs each TestCase class as its own test (see tests/cli/CMakeLists.txt).
SOFTMAX_CLI_STREAM_MB sets the size of the generated stream of the
bounded-memory test (default 200).
"""

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import mpmath
import numpy as np

# The byte order of the host the command runs on: '|' data (no order) is read
# in it. Python's own unless the command runs elsewhere (s390x under qemu).
COMMAND_BYTE_ORDER = {"little": "<", "big": ">"}[os.environ.get("SOFTMAX_CLI_BYTE_ORDER", sys.byteorder)]

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.environ.get("SOFTMAX_CLI", os.path.join(HERE, "..", "..", "build", "cli", "softmax"))
GOLDEN = os.path.join(HERE, "golden")

EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_UNAVAILABLE = 64, 65, 66, 69
EX_CANTCREAT = 73

mpmath.mp.dps = 50


def run(args, stdin="", env=None, check=True):
    """Runs the command; returns (exit code, stdout, stderr) as text."""
    full_env = dict(os.environ)
    full_env.pop("COLUMNS", None)
    if env:
        full_env.update(env)
    result = subprocess.run([CLI] + list(args), input=stdin.encode(), capture_output=True, env=full_env,
                            timeout=120)
    out, err = result.stdout.decode(), result.stderr.decode()
    if check and result.returncode != 0:
        raise AssertionError(f"softmax {' '.join(args)} exited {result.returncode}: {err}")
    return result.returncode, out, err


def output(args, stdin=""):
    return run(args, stdin)[1]


def rows_of(text):
    return [[float(v) for v in line.split()] for line in text.splitlines() if line and not line.startswith("#")]


def reference_softmax(row, scale=1, log=False):
    """softmax(scale * row) in 50-digit arithmetic (finite inputs)."""
    z = [mpmath.mpf(scale) * mpmath.mpf(float(v)) for v in row]
    m = max(z) if scale >= 0 else max(z)
    terms = [mpmath.exp(v - m) for v in z]
    total = mpmath.fsum(terms)
    if log:
        return [float(v - m - mpmath.log(total)) for v in z]
    return [float(t / total) for t in terms]


def numpy_softmax(x, axis=-1, scale=1.0, log=False):
    z = np.asarray(x, dtype=np.float64) * scale
    z = z - z.max(axis=axis, keepdims=True)
    if log:
        return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def expect_usage_errors(test, cases, try_help=False):
    """Each (args, message): exit status EX_USAGE, the message on stderr, nothing on stdout
    (and the pointer to --help if try_help)."""
    for args, message in cases:
        with test.subTest(args=args):
            status, out, err = run(args, "1 2\n", check=False)
            test.assertEqual(status, EX_USAGE, err)
            test.assertIn(f"softmax: {message}", err)
            test.assertEqual(out, "")
            if try_help:
                test.assertIn("Try 'softmax --help'", err)


class Case(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.tmp = self.dir.name

    def tearDown(self):
        self.dir.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def assertRowsClose(self, got, expected, rtol=1e-15, atol=0.0):
        self.assertEqual(len(got), len(expected))
        for g, e in zip(got, expected):
            np.testing.assert_allclose(np.array(g), np.array(e), rtol=rtol, atol=atol)

    def assertFails(self, args, code, message, stdin=""):
        status, out, err = run(args, stdin, check=False)
        self.assertEqual(status, code, f"exit status for {args}: {err}")
        self.assertIn(message, err)
        return err


class TextInput(Case):
    def test_seed_examples_against_mpmath(self):
        for row, scale in [([1, 2, 3], 1), ([1, 2, 3], 0.5), ([1, 2, 3], 2), ([10, 20, 30], 1), ([10, 20, 30], 0.01)]:
            got = rows_of(output(["--scale", str(scale), "--precision", "17"], " ".join(map(str, row)) + "\n"))
            self.assertRowsClose(got, [reference_softmax(row, scale)], rtol=4e-16)

    def test_default_output_is_six_significant_digits(self):
        self.assertEqual(output([], "1 2 3\n"), "0.0900306 0.244728 0.665241\n")
        self.assertEqual(output([], "10 20 30\n"), "2.06106e-09 4.53979e-05 0.999955\n")

    def test_separators_blank_lines_comments_crlf(self):
        text = "1 2 3\n\n# a comment\n1\t2\t3\r\n1,2,3\n 1 , 2 ,\t3 \n"
        self.assertEqual(output([], text), "0.0900306 0.244728 0.665241\n" * 4)

    def test_rows_of_different_lengths_are_independent(self):
        got = rows_of(output(["-p", "17"], "1 2\n1 2 3 4 5\n7\n0.5 -0.5\n"))
        self.assertRowsClose(got, [reference_softmax(r) for r in ([1, 2], [1, 2, 3, 4, 5], [7], [0.5, -0.5])],
                             rtol=4e-16)

    def test_long_rows_and_many_rows(self):
        rng = np.random.default_rng(7)
        x = rng.standard_normal((300, 50)) * 4
        text = "\n".join(" ".join(repr(v) for v in row) for row in x) + "\n"
        long_row = rng.standard_normal(100000)
        text += " ".join(repr(v) for v in long_row) + "\n"
        got = rows_of(output(["-p", "17"], text))
        expected = list(numpy_softmax(x)) + [numpy_softmax(long_row)]
        self.assertRowsClose(got, expected, rtol=1e-13)

    def test_numbers_in_every_notation(self):
        got = rows_of(output(["-p", "17"], "1e0 +2.0 .3e1 -4E-1 0x1p1 1234567890123456789012\n"))
        self.assertRowsClose(got, [reference_softmax([1, 2, 3, -0.4, 2, 1234567890123456789012])], rtol=4e-16)

    def test_infinities_and_nan_follow_the_contract(self):
        self.assertEqual(output([], "1 -inf 1\n"), "0.5 0 0.5\n")
        self.assertEqual(output([], "1 inf inf\n"), "0 0.5 0.5\n")
        self.assertEqual(output([], "-inf -inf\n"), "0 0\n")
        self.assertEqual(output([], "1 nan 2\n"), "nan nan nan\n")

    def test_several_files_in_order_and_dash_for_stdin(self):
        a = self.write("a.txt", "1 2 3\n")
        b = self.write("b.txt", "10 20 30\n")
        self.assertEqual(output([a, "-", b], "0 0\n"),
                         "0.0900306 0.244728 0.665241\n0.5 0.5\n2.06106e-09 4.53979e-05 0.999955\n")

    def test_file_without_final_newline(self):
        self.assertEqual(output([self.write("x.txt", "1 2 3")]), "0.0900306 0.244728 0.665241\n")


class Csv(Case):
    def test_header_is_detected_and_skipped(self):
        self.assertEqual(output([], "a,b,c\n1,2,3\n"), "0.0900306 0.244728 0.665241\n")

    def test_byte_order_mark(self):
        self.assertEqual(output([], "\ufeffa,b\n0,0\n"), "0.5 0.5\n")
        self.assertEqual(output([], "\ufeff1,1\n"), "0.5 0.5\n")

    def test_quoted_header(self):
        self.assertEqual(output([], '"x","y"\n0,0\n'), "0.5 0.5\n")

    def test_numeric_first_line_is_data_unless_header_is_given(self):
        self.assertEqual(output([], "1,2\n0,0\n"), "0.268941 0.731059\n0.5 0.5\n")
        self.assertEqual(output(["--header"], "1,2\n0,0\n"), "0.5 0.5\n")

    def test_header_names_the_bars(self):
        text = output(["--plot"], "cat,dog\n0,0\n", )
        self.assertIn("cat ", text)
        self.assertIn("dog ", text)

    def test_partly_numeric_first_line_is_an_error(self):
        self.assertFails([], EX_DATAERR, "standard input:1:3: expected a number, found 'b'", "1,b,3\n")


class Options(Case):
    def test_scale_negative_is_softmin_and_zero_uniform(self):
        got = rows_of(output(["-s", "-1", "-p", "17"], "1 2 3\n"))
        self.assertRowsClose(got, [reference_softmax([-1, -2, -3])], rtol=4e-16)
        self.assertEqual(output(["--scale", "0"], "1 2 5\n"), "0.333333 0.333333 0.333333\n")

    def test_temperature_list_and_repeats_give_one_block_each(self):
        text = output(["-t", "0.1,0.5", "--temperature", "1", "-t", "10", "-p", "17"], "2 1 3 5 4\n")
        blocks = re.findall(r"# temperature (\S+)\n(.*)\n", text)
        self.assertEqual([b[0] for b in blocks], ["0.1", "0.5", "1", "10"])
        for t, row in blocks:
            self.assertRowsClose([[float(v) for v in row.split()]],
                                 [reference_softmax([2, 1, 3, 5, 4], 1 / mpmath.mpf(t))], rtol=4e-16)

    def test_temperature_from_a_file_rereads_it(self):
        f = self.write("x.txt", "1 2\n3 4\n")
        text = output(["-t", "1,2", f])
        self.assertEqual(text.count("# temperature"), 2)
        self.assertEqual(len(rows_of(text)), 4)

    def test_temperature_zero_is_greedy(self):
        self.assertEqual(output(["-t", "0"], "2 1 3 5 4\n"), "0 0 0 1 0\n")
        self.assertEqual(output(["-t", "0"], "5 1 5\n"), "0.5 0 0.5\n")

    def test_scale_and_temperature_combine(self):
        got = rows_of(output(["-s", "3", "-t", "2", "-p", "17"], "1 2 3\n"))
        self.assertRowsClose(got, [reference_softmax([1, 2, 3], 1.5)], rtol=4e-16)

    def test_log(self):
        got = rows_of(output(["--log", "-p", "17"], "1 2 3\n1000 0 -1000\n"))
        self.assertRowsClose(got, [reference_softmax([1, 2, 3], log=True),
                                   reference_softmax([1000, 0, -1000], log=True)], rtol=4e-16, atol=4.5e-16)
        got = rows_of(output(["-l", "-s", "0.5", "-p", "17"], "1 2 3\n"))
        self.assertRowsClose(got, [reference_softmax([1, 2, 3], 0.5, log=True)], rtol=4e-16, atol=4.5e-16)

    def test_axis_on_text(self):
        x = [[1, 2, 3], [4, 6, 5]]
        text = "1 2 3\n4 6 5\n"
        for axis in ("0", "-2"):
            got = rows_of(output(["--axis", axis, "-p", "17"], text))
            self.assertRowsClose(got, list(numpy_softmax(x, axis=0)), rtol=1e-15)
        for axis in ("1", "-1"):
            got = rows_of(output(["-a", axis, "-p", "17"], text))
            self.assertRowsClose(got, list(numpy_softmax(x, axis=1)), rtol=1e-15)

    def test_axis_out_of_range_for_text(self):
        self.assertFails(["--axis", "2"], EX_USAGE, "text input is a matrix", "1 2\n")

    def test_dtype_f32(self):
        got = rows_of(output(["--dtype", "f32", "-p", "9"], "1 2 3\n0.1 0.2 0.3\n"))
        for g, row in zip(got, ([1, 2, 3], [0.1, 0.2, 0.3])):
            expected = np.float32(reference_softmax([np.float32(v) for v in row]))
            np.testing.assert_allclose(np.float32(g), expected, rtol=4 * 2.0 ** -23)
        self.assertEqual(output(["--dtype", "f64", "-p", "17"], "0 0\n"), "0.5 0.5\n")

    def test_fast_mode(self):
        """--fast: f32 within the fast mode's 5 ulp of the exact result, f64 unchanged."""
        rng = np.random.default_rng(5)
        x = (rng.standard_normal((64, 300)) * 10).astype(np.float32)
        f = self.path("x.npy")
        np.save(f, x)
        for log in ([], ["--log"]):
            out = self.path("y.npy")
            run(["--fast", *log, "-o", out, f])
            got = np.load(out)
            self.assertEqual(got.dtype, np.float32)
            exact = np.array([[float(v) for v in reference_softmax([float(v) for v in row], log=bool(log))]
                              for row in x[:8]])
            measured = np.abs(exact) if not log else np.maximum(np.abs(exact), 1.0)
            ulp = np.spacing(measured.astype(np.float32)).astype(np.float64)
            keep = np.abs(exact) > 1e-30 if not log else np.isfinite(exact)
            err = np.abs(got[:8].astype(np.float64) - exact)[keep] / ulp[keep]
            self.assertLessEqual(float(np.max(err)), 5.0)
        text = "1 2 3\n0.5 -7 2\n"
        self.assertEqual(output(["--fast", "-p", "17"], text), output(["-p", "17"], text))

    def test_threads_do_not_change_the_result(self):
        rng = np.random.default_rng(3)
        text = "\n".join(" ".join(repr(v) for v in r) for r in rng.standard_normal((2000, 64))) + "\n"
        one = output(["-j", "1", "-p", "17"], text)
        self.assertEqual(one, output(["--threads", "2", "-p", "17"], text))
        f = self.path("a.npy")
        np.save(f, rng.standard_normal((300, 1000)).astype(np.float32))
        self.assertEqual(output(["-j", "1", f]), output(["-j", "2", f]))

    def test_precision_and_format(self):
        self.assertEqual(output(["--precision", "3"], "1 2 3\n"), "0.09 0.245 0.665\n")
        self.assertEqual(output(["-p", "17"], "0 0 0\n"), "0.33333333333333331 0.33333333333333331 0.33333333333333331\n")
        self.assertEqual(output(["--format", "%.4f"], "1 2 3\n"), "0.0900 0.2447 0.6652\n")
        self.assertEqual(output(["-f", "%8.2e"], "1 2 3\n"), "9.00e-02 2.45e-01 6.65e-01\n")
        self.assertEqual(output(["-f", "p=%.2f%%"], "0 0\n"), "p=0.50% p=0.50%\n")

    def test_help_lists_every_option(self):
        status, text, _ = run(["--help"])
        self.assertEqual(status, 0)
        for option in ("--scale", "--temperature", "--log", "--fast", "--axis", "--mask", "--sample", "--seed", "--top-k",
                       "--top-p", "--min-p", "--counts", "--entropy", "--logsumexp", "--argmax", "--dtype",
                       "--threads", "--precision", "--format", "--plot", "--header", "--output", "--help",
                       "--version", "--delimiter", "--columns", "--max-line-length", "--require-input", "Examples",
                       "Exit status"):
            self.assertIn(option, text)
        self.assertEqual(run(["-h"])[1], text)

    def test_help_man_page_and_docs_name_the_same_options(self):
        text = run(["--help"])[1]
        options = set(re.findall(r"--[a-z][a-z-]+", text))
        with open(os.path.join(HERE, "..", "..", "cli", "softmax.1")) as f:
            man = set(re.findall(r"\\-\\-([a-z][a-z\\-]+)", f.read()))
            man = {"--" + m.replace("\\-", "-") for m in man}
        with open(os.path.join(HERE, "..", "..", "docs", "cli.md")) as f:
            docs = set(re.findall(r"--[a-z][a-z-]+", f.read()))
        self.assertEqual(options - man, set(), "in --help, not in softmax.1")
        self.assertEqual(options - docs, set(), "in --help, not in docs/cli.md")
        self.assertEqual(man - options, set(), "in softmax.1, not in --help")

    def test_version(self):
        self.assertRegex(output(["--version"]), r"^softmax \(libsoftmax\) \d+\.\d+\.\d+, code path \w+\n$")


class NpyIO(Case):
    def test_f32_f64_f16_any_shape_any_axis(self):
        rng = np.random.default_rng(11)
        for dtype, rtol in ((np.float64, 1e-15), (np.float32, 4e-7), (np.float16, 4e-7)):
            x = (rng.standard_normal((3, 4, 5)) * 3).astype(dtype)
            f = self.path("x.npy")
            np.save(f, x)
            for axis in (0, 1, 2, -1, -3):
                out = self.path("y.npy")
                run([f, "--axis", str(axis), "-o", out])
                y = np.load(out)
                self.assertEqual(y.shape, x.shape)
                # the file's type: float16 in, float16 out (the f32 result rounded once)
                self.assertEqual(y.dtype, dtype)
                exact = numpy_softmax(x.astype(np.float64), axis=axis)
                if dtype == np.float16:
                    np.testing.assert_allclose(y.astype(np.float64), exact, rtol=2.0 ** -11 + 4e-7, atol=2.0 ** -25)
                    continue
                np.testing.assert_allclose(y, exact, rtol=rtol, atol=1e-30)

    def run_on_pipe(self, data, args=(), name=None):
        """Runs the command on a pipe named on its command line: /dev/fd/N (as bash's <(...) gives
        it) or, with name, a FIFO of that name. Returns (status, stdout, stderr)."""
        import threading
        if name is None:
            read_end, write_end = os.pipe()
            target, pass_fds = f"/dev/fd/{read_end}", (read_end,)
        else:
            target, pass_fds = self.path(name), ()
            os.mkfifo(target)

        def feed():
            if name is None:
                out = write_end
            else:
                out = os.open(target, os.O_WRONLY)
            try:
                os.write(out, data)
            except BrokenPipeError:
                pass
            os.close(out)

        process = subprocess.Popen([CLI, target] + list(args), pass_fds=pass_fds, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        if name is None:
            os.close(read_end)
        feeder = threading.Thread(target=feed)
        feeder.start()
        out, err = process.communicate(timeout=60)
        feeder.join()
        if name is not None:
            os.unlink(target)
        return process.returncode, out.decode(), err.decode()

    def test_npy_in_a_pipe_named_on_the_command_line(self):
        """A .npy array from <(...) (a /dev/fd path) or a FIFO is read as it is on standard input:
        it used to be read as text (/dev/fd/N:1:8: expected a number, found a NUL byte) or refused (a
        FIFO named *.npy: must be a regular file)."""
        f = self.path("x.npy")
        np.save(f, np.array([[1.0, 2.0, 3.0]]))
        with open(f, "rb") as source:
            data = source.read()
        expected = "0.0900306 0.244728 0.665241\n"
        for name in (None, "fifo.npy", "fifo"):
            with self.subTest(name=name):
                self.assertEqual(self.run_on_pipe(data, name=name), (0, expected, ""))
                status, out, err = self.run_on_pipe(data, ["-t", "1,2"], name=name)
                self.assertEqual((status, err), (0, ""))
                self.assertEqual(out, "# temperature 1\n" + expected + "# temperature 2\n0.186324 0.307196 0.50648\n")
        # text in a pipe is still text; an array to a .npy output: the output was set up for text
        self.assertEqual(self.run_on_pipe(b"1 2 3\n"), (0, expected, ""))
        status, _, err = self.run_on_pipe(data, ["-o", self.path("y.npy")])
        self.assertEqual(status, EX_USAGE, err)
        self.assertIn("a .npy array in a pipe, with a .npy output: give it on standard input", err)
        self.assertFalse(os.path.exists(self.path("y.npy")))
        status, _, err = self.run_on_pipe(data, ["-o", self.path("y.npy")], name="pipe.npy")
        self.assertEqual((status, err), (0, ""))
        np.testing.assert_allclose(np.load(self.path("y.npy")), numpy_softmax([[1.0, 2.0, 3.0]]), rtol=1e-15)

    def test_npy_to_text_prints_rows_of_the_last_axis(self):
        x = np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
        f = self.path("x.npy")
        np.save(f, x)
        self.assertEqual(output([f]), "0.0900306 0.244728 0.665241\n2.06106e-09 4.53979e-05 0.999955\n")
        np.save(f, np.array([1.0, 2.0, 3.0]))
        self.assertEqual(output([f]), "0.0900306 0.244728 0.665241\n")

    def test_npy_recognised_by_content(self):
        f = self.path("x.NPY")
        with open(f, "wb") as handle:
            np.save(handle, np.array([1.0, 2.0, 3.0]))
        self.assertEqual(output([f]), "0.0900306 0.244728 0.665241\n")

    def test_dtype_option_on_npy(self):
        f = self.path("x.npy")
        np.save(f, np.array([[1, 2, 3]], dtype=np.float32))
        run([f, "--dtype", "f64", "-o", self.path("y.npy")])
        y = np.load(self.path("y.npy"))
        self.assertEqual(y.dtype, np.float64)
        np.testing.assert_allclose(y[0], reference_softmax([1, 2, 3]), rtol=1e-15)
        np.save(f, np.array([[1, 2, 3]], dtype=np.float64))
        run([f, "--dtype", "f32", "-o", self.path("y.npy")])
        self.assertEqual(np.load(self.path("y.npy")).dtype, np.float32)

    def test_text_to_npy_and_temperatures_add_a_dimension(self):
        out = self.path("y.npy")
        run(["-o", out], "1 2 3\n4 5 6\n")
        y = np.load(out)
        self.assertEqual(y.shape, (2, 3))
        np.testing.assert_allclose(y, numpy_softmax([[1, 2, 3], [4, 5, 6]]), rtol=1e-15)
        run(["-o", out, "-t", "1,2,4", "--log"], "1 2 3\n4 5 6\n")
        y = np.load(out)
        self.assertEqual(y.shape, (3, 2, 3))
        for i, t in enumerate((1, 2, 4)):
            np.testing.assert_allclose(y[i], numpy_softmax([[1, 2, 3], [4, 5, 6]], scale=1 / t, log=True), rtol=1e-14)
        f = self.path("x.npy")
        np.save(f, np.ones((2, 2), dtype=np.float32))
        run([f, "-o", out, "-t", "1,2"])
        self.assertEqual(np.load(out).shape, (2, 2, 2))

    def test_text_output_file_and_empty_and_scalar_arrays(self):
        out = self.path("y.txt")
        run(["-o", out], "0 0\n")
        with open(out) as f:
            self.assertEqual(f.read(), "0.5 0.5\n")
        f = self.path("x.npy")
        np.save(f, np.zeros((0, 3), dtype=np.float32))
        run([f, "-o", self.path("e.npy")])
        self.assertEqual(np.load(self.path("e.npy")).shape, (0, 3))
        np.save(f, np.float64(7.0))
        self.assertEqual(output([f]), "1\n")

    def test_rows_of_no_value_are_empty_lines_and_their_count_is_kept(self):
        """An array whose last extent is 0 has rows of no value: printed as text, each is an
        empty line (as numpy.savetxt writes it; the lines were missing, so `softmax x.npy | wc
        -l` said 0 rows for 3), with a note that text input reads them back as blank lines
        (skipped: no row) while a .npy output keeps the shape; the row statistics give each
        row the library's values for no element, and sampling one is an error, not an empty
        output with exit status 0."""
        f = self.path("x.npy")
        np.save(f, np.zeros((3, 0)))
        status, out, err = run([f])
        self.assertEqual(out, "\n\n\n")
        self.assertIn("each of its 3 rows is an empty line, which text input skips as a blank line (-o FILE.npy "
                      "keeps the shape)", err)
        self.assertEqual(output([f, "-t", "1,2"]), "# temperature 1\n\n\n\n# temperature 2\n\n\n\n")
        self.assertEqual(output([f, "--plot"]), "row 1\n\nrow 2\n\nrow 3\n")
        self.assertEqual(output([f, "--argmax", "--entropy", "--logsumexp"]), "-1 0 -inf\n" * 3)
        self.assertFails([f, "--sample", "2"], EX_DATAERR, "x.npy: row 1: nothing to sample: the row has no value")
        self.assertFails([f, "--sample", "2", "--counts"], EX_DATAERR, "x.npy: row 1: nothing to sample")
        self.assertFails([f, "--require-input"], EX_DATAERR, "x.npy: empty input: no row of numbers (--require-input)")
        run([f, "-o", self.path("y.npy"), "-t", "1,2"])
        self.assertEqual(np.load(self.path("y.npy")).shape, (2, 3, 0))
        # the text read back: blank lines, no row (a .npy of it has no row either)
        run([f, "-o", self.path("y.txt")])
        self.assertEqual(run([self.path("y.txt")])[1:], ("", ""))
        run([self.path("y.txt"), "-o", self.path("z.npy")])
        self.assertEqual(np.load(self.path("z.npy")).shape, (0, 0))
        # every shape: as many lines as rows of the last axis; a (0,) array is one row of no value
        for shape, lines in (((0,), 1), ((2, 3, 0), 6), ((0, 3), 0), ((2, 0, 4), 0), ((0, 0), 0)):
            np.save(f, np.zeros(shape, dtype=np.float32))
            self.assertEqual(output([f]), "\n" * lines, shape)
            self.assertEqual(output([f, "--argmax"]), "-1\n" * lines if shape[-1] == 0 else "", shape)
        # along another axis, a plot per distribution of no value along it
        np.save(f, np.zeros((0, 2)))
        self.assertEqual(output([f, "--plot", "--axis", "0"]), "line 1\n\nline 2\n")
        self.assertFails([f, "--require-input"], EX_DATAERR, "x.npy: empty input: no row of numbers")

    def test_either_byte_order_is_read_and_little_endian_is_written(self):
        rng = np.random.default_rng(12)
        for code, rtol in (("f2", 4e-7), ("f4", 4e-7), ("f8", 4e-15)):
            for order in "<>=|":
                x = (rng.standard_normal((3, 4, 5)) * 3).astype(order + code if order != "|" else code)
                f = self.path("x.npy")
                if order == "|":  # numpy writes '<'; '|' (no order) is read in the command host's order
                    npy_with_header(f, f"{{'descr': '|{code}', 'fortran_order': False, 'shape': (3, 4, 5), }}",
                                    x.astype(COMMAND_BYTE_ORDER + code).tobytes())
                else:
                    np.save(f, x)
                reference = x.astype(np.float64)
                for axis in (0, 2):
                    with self.subTest(descr=order + code, axis=axis):
                        out = self.path("y.npy")
                        run([f, "--axis", str(axis), "-o", out])
                        with open(out, "rb") as handle:
                            self.assertIn(b"'descr': '<", handle.read(128))
                        y = np.load(out)
                        half = code == "f2"  # a float16 file gives float16 out: one more rounding
                        np.testing.assert_allclose(y.astype(np.float64), numpy_softmax(reference, axis=axis),
                                                   rtol=2.0 ** -11 + rtol if half else rtol,
                                                   atol=2.0 ** -25 if half else 1e-30)
                        text = rows_of(output([f, "--axis", str(axis), "-p", "17"]))
                        np.testing.assert_allclose(np.array(text).reshape(x.shape),
                                                   numpy_softmax(reference, axis=axis), rtol=rtol, atol=1e-30)
                if code != "f2":
                    with self.subTest(descr=order + code, what="--argmax"):
                        got = [int(v) for v in output([f, "--argmax"]).split()]
                        self.assertEqual(got, list(reference.reshape(-1, 5).argmax(axis=1)))
        # A big-endian mask adds the right numbers.
        x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
        np.save(self.path("x.npy"), x)
        mask = np.array([0.0, -1.5, 2.25])
        np.save(self.path("m.npy"), mask.astype(">f8"))
        run([self.path("x.npy"), "--mask", self.path("m.npy"), "-o", self.path("y.npy")])
        np.testing.assert_allclose(np.load(self.path("y.npy")), numpy_softmax(x + mask), rtol=1e-15)

    def test_misaligned_data_is_read_correctly(self):
        x = np.random.default_rng(13).standard_normal((4, 6))
        for descr in ("<f8", ">f8", "<f4"):
            values = x.astype(descr)
            # a header of 1 + 10 bytes: the data starts at offset 21, not a multiple of the element size
            header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': (4, 6), }}"
            f = self.path("odd.npy")
            with open(f, "wb") as handle:
                text = header.encode() + b"\n"
                handle.write(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + values.tobytes())
            self.assertNotEqual((10 + len(header) + 1) % values.itemsize, 0)
            with self.subTest(descr=descr):
                out = self.path("y.npy")
                run([f, "-o", out])
                rtol = 1e-15 if descr.endswith("8") else 4e-7
                np.testing.assert_allclose(np.load(out), numpy_softmax(values.astype(np.float64)), rtol=rtol)
                run([f, "--axis", "0", "-o", out])
                np.testing.assert_allclose(np.load(out), numpy_softmax(values.astype(np.float64), axis=0), rtol=rtol)

    def test_large_array_in_chunks(self):
        x = np.random.default_rng(5).standard_normal((70000, 100)).astype(np.float32)
        f = self.path("x.npy")
        np.save(f, x)
        run([f, "-o", self.path("y.npy")])
        np.testing.assert_allclose(np.load(self.path("y.npy")), numpy_softmax(x), rtol=4e-7, atol=1e-38)

    def test_npy_errors(self):
        f = self.path("bad.npy")
        np.save(f, np.ones((2, 3), dtype=np.int32))
        self.assertFails([f], EX_DATAERR, "data type '<i4'; expected float16, float32 or float64")
        np.save(f, np.asfortranarray(np.ones((2, 3))))
        self.assertFails([f], EX_DATAERR, "Fortran order")
        np.save(f, np.ones((4, 3)))
        with open(f, "r+b") as handle:
            handle.truncate(os.path.getsize(f) - 8)
        self.assertFails([f], EX_DATAERR, "the data is truncated")
        self.write("bad.npy", "not an array at all")
        self.assertFails([f], EX_DATAERR, "no .npy magic string")
        self.assertFails([self.path("missing.npy")], EX_NOINPUT, "missing.npy: cannot open")
        np.save(f, np.ones((2, 3)))
        self.assertFails([f, "--axis", "2"], EX_USAGE, "has 2 dimensions; expected an axis in [-2, 1]")


class Errors(Case):
    def test_malformed_number_names_file_line_column(self):
        f = self.write("data.txt", "1 2 3\n4 5 6\n7 8x 9\n")
        err = self.assertFails([f], EX_DATAERR, f"{f}:3:3: expected a number, found '8x'")
        self.assertEqual(err.count("\n"), 1)
        self.assertFails([], EX_DATAERR, "standard input:2:1: expected a number, found 'abc'", "1\nabc\n")
        self.assertFails([], EX_DATAERR, "standard input:1:3: expected a number before ','", "1,,2\n")
        self.assertFails([], EX_DATAERR, "standard input:1:4: expected a number after ','", "1,2,\n")

    def test_ragged_rows_where_a_matrix_is_needed(self):
        self.assertFails(["--axis", "0"], EX_DATAERR,
                         "standard input:3: ragged rows: this row has 2 values, line 1 has 3; --axis 0 needs a matrix",
                         "1 2 3\n4 5 6\n7 8\n")
        self.assertFails(["-o", self.path("y.npy")], EX_DATAERR, "a .npy output needs a matrix", "1 2 3\n4 5\n")
        self.assertFalse(os.path.exists(self.path("y.npy")))

    def test_empty_input_is_empty_output_unless_required(self):
        # `grep ... | softmax` when nothing matches: nothing out, success
        for text in ("", "\n", "# only a comment\n\n"):
            self.assertEqual(run([], text), (0, "", ""))
        f = self.write("e.txt", "# only a comment\n\n")
        self.assertEqual(run([f]), (0, "", ""))
        run(["-o", self.path("e.npy")], "")
        self.assertEqual(np.load(self.path("e.npy")).shape, (0, 0))
        self.assertFails(["--require-input"], EX_DATAERR, "standard input: empty input: no row of numbers", "")
        self.assertFails(["--require-input", f], EX_DATAERR, f"{f}: empty input")
        self.assertEqual(run(["--require-input"], "1 1\n")[1], "0.5 0.5\n")

    def test_missing_input_file(self):
        self.assertFails([self.path("nope.txt")], EX_NOINPUT, "nope.txt: cannot open: No such file or directory")

    def test_usage_errors(self):
        cases = [(["--bogus"], "unknown option '--bogus'"), (["-Z"], "unknown option '-Z'"),
                 (["--scale"], "option '--scale' needs an argument"), (["--scale", "x"], "--scale: expected a number"),
                 (["--scale", "nan"], "--scale: expected a number"),
                 (["-t", "1,x"], "--temperature: expected a number, got 'x'"), (["-t", ","], "--temperature"),
                 (["-p", "0"], "--precision: expected an integer in [1, 17]"),
                 (["-j", "0"], "--threads: expected an integer in [1, 1024]"),
                 (["--dtype", "f16"], "--dtype: expected f32 or f64"),
                 (["--axis", "9"], "--axis: expected an integer in [-8, 7]"),
                 (["-f", "%s"], "--format: '%s' is not a format for one number"),
                 (["-f", "%d"], "is not a format for one number"),
                 (["-f", "%f %f"], "has 2 conversions; expected exactly one"),
                 (["-f", "none"], "has 0 conversions"),
                 (["--seed", "3"], "go with --sample N"), (["--counts"], "go with --sample N"),
                 (["--top-p", "1.5", "--sample", "3"], "--top-p: expected a probability in (0, 1]"),
                 (["--min-p", "-1", "--sample", "3"], "--min-p: expected a probability in [0, 1]"),
                 (["--sample", "0"], "--sample: expected an integer in [1, "),
                 (["-t", "0", "-s", "0"], "the scale S / T is undefined"),
                 (["-o", "x.npy", "a", "b"], "-o writes one result"),
                 (["--log", "--entropy"], "--log does not combine")]
        for args, message in cases:
            with self.subTest(args=args):
                err = self.assertFails(args, EX_USAGE, message, "1 2\n")
                self.assertIn("Try 'softmax --help'", err)

    def test_output_that_cannot_be_created(self):
        self.assertFails(["-o", self.path("no/such/dir/y.txt")], EX_CANTCREAT, "cannot create the output file",
                         "1 2\n")

    def test_nothing_half_written_on_error(self):
        for name in ("y.txt", "y.npy"):
            out = self.write(name, "previous content\n")
            big = "1 2 3\n" * 200000 + "1 2 oops\n"
            self.assertFails(["-o", out], EX_DATAERR, ":200001:5: expected a number, found 'oops'", big)
            with open(out) as f:
                self.assertEqual(f.read(), "previous content\n")
            self.assertEqual(sorted(os.listdir(self.tmp)), [name])
            os.remove(out)

    def test_interrupted_output_leaves_nothing(self):
        out = self.path("y.txt")
        process = subprocess.Popen([CLI, "-o", out], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        process.stdin.write(b"1 2 3\n" * 1000)
        process.stdin.flush()
        self.wait_for_written_temporary_file()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        process.stdin.close()
        process.stderr.close()
        self.assertEqual(os.listdir(self.tmp), [])

    def wait_for_written_temporary_file(self):
        # written once the rows before the next read are handed on: the handlers are in place
        deadline = time.time() + 30
        while time.time() < deadline:
            names = [n for n in os.listdir(self.tmp) if n.startswith(".softmax-output.")]
            if names and os.path.getsize(os.path.join(self.tmp, names[0])) > 0:
                return
            time.sleep(0.01)
        self.fail("no temporary output file was written")

    def test_signals_ignored_at_the_start_stay_ignored(self):
        # `nohup softmax ... -o FILE &` outlives the hangup, and a job started with Ctrl-C ignored
        # ignores it: the handlers that remove the temporary output file were installed over
        # SIG_IGN, so that the hangup ended the run (exit by SIGHUP, no output).
        out = self.path("y.txt")

        def ignore():
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)

        process = subprocess.Popen([CLI, "-o", out], stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                                   preexec_fn=ignore)
        process.stdin.write(b"0 0\n")
        process.stdin.flush()
        self.wait_for_written_temporary_file()
        process.send_signal(signal.SIGHUP)
        process.send_signal(signal.SIGINT)
        process.stdin.write(b"1 1\n")
        process.stdin.close()
        self.assertEqual(process.wait(timeout=30), 0, process.stderr.read())
        process.stderr.close()
        with open(out) as f:
            self.assertEqual(f.read(), "0.5 0.5\n0.5 0.5\n")
        self.assertEqual(os.listdir(self.tmp), ["y.txt"])

    def test_random_input_never_crashes(self):
        # Random bytes drawn mostly from the characters the scanner cares
        # about: every run ends with success or a data error, never a signal
        # (the sanitizer build turns any memory error into a failure here).
        rng = np.random.default_rng(12)
        alphabet = list(b"0123456789+-.eEinfaxp,, \t\r\n#\"'") + [0xEF, 0xBB, 0xBF, 0x00, 0xFF]
        for case in range(150):
            data = bytes(rng.choice(alphabet, size=int(rng.integers(0, 400))).tolist())
            args = [["-p", "17"], ["--axis", "0"], ["--dtype", "f32"], ["--plot"], ["--header"], ["-t", "0.5,2"],
                    ["-o", self.path("r.npy")]][case % 7]
            result = subprocess.run([CLI] + args, input=data, capture_output=True, timeout=30)
            self.assertIn(result.returncode, (0, EX_DATAERR), f"{args} on {data!r}: {result.stderr!r}")
            if result.returncode == EX_DATAERR:
                self.assertRegex(result.stderr.decode(errors="replace"), r"^softmax: standard input(:\d+)*: ")

    def test_sampler_and_statistics_say_when_unavailable(self):
        for args in (["--sample", "10"], ["--sample", "10", "--seed", "1", "--counts", "--top-k", "2"],
                     ["--entropy"], ["--logsumexp"], ["--argmax"]):
            status, out, err = run(args, "1 2 3\n", check=False)
            if status == EX_UNAVAILABLE:
                self.assertIn("not available in this build", err)
            else:
                self.assertEqual(status, 0, err)

    def test_mask_says_when_unavailable(self):
        mask = self.write("m.txt", "0 -inf 0\n")
        status, out, err = run(["--mask", mask], "1 2 3\n", check=False)
        if status == EX_UNAVAILABLE:
            self.assertIn("--mask: not available in this build", err)
        else:
            self.assertEqual(status, 0, err)
            self.assertRowsClose(rows_of(out), [[reference_softmax([1, 3])[0], 0, reference_softmax([1, 3])[1]]],
                                 rtol=1e-6)


def sampler_available():
    return run(["--argmax"], "1 2\n", check=False)[0] != EX_UNAVAILABLE


@unittest.skipUnless(sampler_available(), "this build of libsoftmax has no sampler (Errors checks the message)")
class Sampling(Case):
    LOGITS = [2, 1, 3, 5, 4]
    TEXT = "2 1 3 5 4\n"

    def counts(self, args, text=TEXT):
        return [[int(v) for v in line.split()] for line in output(["--counts"] + args, text).splitlines()
                if not line.startswith("#")]

    def assertFrequencies(self, counts, probabilities):
        # A chi-square bound far in the tail (p ~ 1e-6 for 4 degrees of freedom).
        n = sum(counts)
        chi2 = sum((c - n * p) ** 2 / (n * p) for c, p in zip(counts, probabilities) if p > 1e-9)
        self.assertLess(chi2, 35, f"counts {counts} against {probabilities}")
        for c, p in zip(counts, probabilities):
            if p < 1e-12:
                self.assertEqual(c, 0)

    def test_draws_are_indices_and_depend_only_on_the_seed(self):
        draws = output(["--sample", "50", "--seed", "7"], self.TEXT).split()
        self.assertEqual(len(draws), 50)
        self.assertTrue(all(d in "01234" for d in draws))
        self.assertEqual(output(["--sample", "50", "--seed", "7", "-j", "2"], self.TEXT).split(), draws)
        self.assertNotEqual(output(["--sample", "50", "--seed", "8"], self.TEXT).split(), draws)
        # Row r always uses stream r: the same row in a batch of many draws the same.
        many = output(["--sample", "50", "--seed", "7"], self.TEXT * 3).splitlines()
        self.assertEqual(many[0].split(), draws)

    def test_seeds_take_all_64_bits(self):
        # softmax_sample and the Python package take any 64-bit seed; the command stopped at 2^63 - 1.
        # Seeds differing only in bit 63 (or bit 0 next to it) must draw differently.
        text = "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        top = output(["--sample", "40", "--seed", str(2 ** 64 - 1)], text)
        self.assertEqual(output(["--sample", "40", "--seed", str(2 ** 64 - 1)], text), top)
        self.assertNotEqual(output(["--sample", "40", "--seed", str(2 ** 63 - 1)], text), top)
        self.assertNotEqual(output(["--sample", "40", "--seed", str(2 ** 64 - 2)], text), top)

    def test_counts_follow_the_softmax_at_each_temperature(self):
        blocks = self.counts(["--sample", "20000", "--seed", "1", "-t", "0.5,1,10"])
        for counts, t in zip(blocks, (0.5, 1, 10)):
            self.assertEqual(sum(counts), 20000)
            self.assertFrequencies(counts, reference_softmax(self.LOGITS, 1 / mpmath.mpf(t)))

    def test_scale_and_greedy(self):
        counts = self.counts(["--sample", "20000", "--seed", "2", "-s", "0.5"])[0]
        self.assertFrequencies(counts, reference_softmax(self.LOGITS, 0.5))
        self.assertEqual(self.counts(["--sample", "100", "-t", "0"])[0], [0, 0, 0, 100, 0])

    def test_filters(self):
        self.assertEqual(self.counts(["--sample", "500", "--top-k", "1"])[0], [0, 0, 0, 500, 0])
        counts = self.counts(["--sample", "20000", "--seed", "3", "--top-k", "2"])[0]
        p = reference_softmax([5, 4])
        self.assertFrequencies(counts, [0, 0, 0, p[0], p[1]])
        # top-p 0.8: 3 (0.636) alone is short of 0.8, with 4 (0.234) it is not.
        counts = self.counts(["--sample", "20000", "--seed", "4", "--top-p", "0.8"])[0]
        self.assertFrequencies(counts, [0, 0, 0, p[0], p[1]])
        # min-p 0.1: keeps p >= 0.0636: indices 2, 3, 4.
        counts = self.counts(["--sample", "20000", "--seed", "5", "--min-p", "0.1"])[0]
        q = reference_softmax([3, 5, 4])
        self.assertFrequencies(counts, [0, 0] + q)

    def assertBinomialSample(self, values, n, p):
        """values (one per row) are draws of Binomial(n, p): a chi-square goodness of fit on bins of
        expected count >= 20, the p-value (mpmath) above 1e-6."""
        values = np.asarray(values)
        mean = n * p
        sd = max(1.0, float(np.sqrt(n * p * (1 - p))))
        low, high = max(0, int(mean - 6 * sd)), min(n, int(mean + 6 * sd) + 1)
        ks = range(low, high + 1)
        pmf = [mpmath.binomial(n, k) * mpmath.mpf(p) ** k * (1 - mpmath.mpf(p)) ** (n - k) for k in ks]
        bins, expected, acc, edges = [], [], mpmath.mpf(0), []
        start = low
        for k, q in zip(ks, pmf):
            acc += q
            if acc * len(values) >= 20:
                edges.append((start, k))
                expected.append(float(acc) * len(values))
                acc, start = mpmath.mpf(0), k + 1
        edges[-1] = (edges[-1][0], n)
        edges[0] = (0, edges[0][1])
        expected[-1] += float(acc) * len(values)
        observed = [int(np.sum((values >= a) & (values <= b))) for a, b in edges]
        self.assertEqual(sum(observed), len(values))
        chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected))
        dof = len(edges) - 1
        p_value = mpmath.gammainc(dof / 2, chi2 / 2, mpmath.inf, regularized=True)
        self.assertGreater(p_value, 1e-6, f"chi2 {chi2} on {dof} degrees of freedom: {observed} vs {expected}")

    def test_draws_and_counts_agree_at_extreme_temperatures(self):
        # Rows whose differences leave f32 (or whose 1/T does): the single draws (softmax_sample)
        # and --counts (f64 weights) follow the same exact softmax of x / T. The draws once gave
        # "0 -1e-300" at -t 1e-300 half and half and never drew -3e38 beside 3e38 at -t 1e38; and
        # --counts gave -1e308 beside 1e308 at -t 1e308 a count of 0 (p = 0.09), its difference
        # -inf in f64 before 1/T.
        for text, t, dtype in (("0 -1e-300 -2e-300", "1e-300", "f64"), ("3e38 -3e38 1e38", "1e38", "f64"),
                               ("3e38 -3e38 1e38", "1e38", "f32"), ("0 -1e-40 -2e-40", "1e-40", "f32"),
                               ("1e308 -1e308 0", "1e308", "f64"), ("1.7e308 -1.7e308 -1e308", "1e308", "f64")):
            with self.subTest(text=text, t=t, dtype=dtype):
                values = [float(v) for v in text.split()]
                if dtype == "f32":
                    values = [float(np.float32(v)) for v in values]
                p = reference_softmax(values, 1 / mpmath.mpf(t))
                args = ["--sample", "20000", "--seed", "3", "-t", t, "--dtype", dtype]
                draws = [int(d) for d in output(args, text + "\n").split()]
                self.assertFrequencies([draws.count(i) for i in range(3)], p)
                self.assertFrequencies(self.counts(args, text + "\n")[0], p)

    def test_counts_are_one_multinomial_draw(self):
        # O(log N) per row: 10^15 draws at once (a loop over the draws would take years)
        for n in (10 ** 8, 10 ** 15):
            counts = self.counts(["--sample", str(n), "--seed", "11"], "0 1\n")[0]
            self.assertEqual(sum(counts), n)
            p = reference_softmax([0, 1])[0]
            self.assertLess(abs(counts[0] - n * p) / np.sqrt(n * p * (1 - p)), 6)
        # each marginal is binomial: many rows (each its own random stream), both ways of drawing a
        # binomial (mean >= 30: beta splitting; below: inversion), and a filtered distribution
        rows = 3000
        for logits, n, args in (([0, 0, 0], 10000, []), ([0, -10, 1], 100000, []), ([0, 1, 2, 3], 40, []),
                                ([2, 1, 3, 5, 4], 500, ["--top-k", "3"]), ([0, 1], 1000, ["-t", "0.5"])):
            with self.subTest(logits=logits, n=n, args=args):
                text = " ".join(map(str, logits)) + "\n"
                counts = np.array(self.counts(["--sample", str(n), "--seed", "5"] + args, text * rows))
                self.assertEqual(counts.shape, (rows, len(logits)))
                self.assertTrue(np.all(counts.sum(axis=1) == n))
                scale = 2 if args == ["-t", "0.5"] else 1
                kept = sorted(range(len(logits)), key=lambda i: -logits[i])[:3] if args[:1] == ["--top-k"] \
                    else range(len(logits))
                p = reference_softmax([logits[i] for i in sorted(kept)], scale)
                probabilities = [0.0] * len(logits)
                for i, q in zip(sorted(kept), p):
                    probabilities[i] = q
                for i, q in enumerate(probabilities):
                    if q == 0:
                        self.assertTrue(np.all(counts[:, i] == 0))
                    else:
                        self.assertBinomialSample(counts[:, i], n, q)
        # the same seed gives the same counts, another seed others
        again = self.counts(["--sample", "1000", "--seed", "5"], "0 1 2\n")
        self.assertEqual(again, self.counts(["--sample", "1000", "--seed", "5"], "0 1 2\n"))
        self.assertNotEqual(again, self.counts(["--sample", "1000", "--seed", "6"], "0 1 2\n"))

    def test_npy_rows_and_f16(self):
        f = self.path("x.npy")
        np.save(f, np.array([[2, 1, 3, 5, 4], [0, 0, 0, 0, 100]], dtype=np.float16))
        counts = self.counts(["--sample", "1000", "--seed", "9", f], "")
        self.assertEqual(counts[1], [0, 0, 0, 0, 1000])
        self.assertEqual(sum(counts[0]), 1000)
        self.assertFails([f, "--sample", "3", "--axis", "0"], EX_USAGE, "along the last axis")

    def test_sample_plot_shows_probabilities_and_frequencies(self):
        text = run(["--sample", "1000", "--seed", "42", "--counts", "--plot", "-t", "0.5"], self.TEXT,
                   env={"COLUMNS": "90"})[1]
        lines = text.splitlines()
        self.assertEqual(lines[0], "row 1 (temperature 0.5): 1000 samples, seed 42")
        self.assertIn("softmax", lines[1])
        self.assertIn("sampled frequency (count)", lines[1])
        self.assertEqual(len(lines), 7)
        total = 0
        for i, line in enumerate(lines[2:]):
            self.assertTrue(line.startswith(f"{i} "))
            left, right = line.split(" | ")
            self.assertIn("%.6g" % reference_softmax(self.LOGITS, 2)[i], left)
            count = int(re.search(r"\((\d+)\)$", right).group(1))
            self.assertIn("%.3f (%d)" % (count / 1000, count), right)
            total += count
        self.assertEqual(total, 1000)

    def test_row_statistics_against_mpmath(self):
        rows = [[1, 2, 3], [1, 1, 1], [1000, -1000, 0], [0.5, -2, 7, 7]]
        text = "\n".join(" ".join(map(str, r)) for r in rows) + "\n"
        got = [line.split() for line in output(["--entropy", "--logsumexp", "--argmax", "-p", "17"], text).splitlines()]
        for row, (entropy, lse, argmax) in zip(rows, got):
            p = reference_softmax(row)
            expected_entropy = -sum(v * float(mpmath.log(v)) for v in p if v > 0)
            expected_lse = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in row))
            self.assertAlmostEqual(float(entropy), expected_entropy, delta=1e-14 * (1 + expected_entropy))
            self.assertAlmostEqual(float(lse), float(expected_lse), delta=1e-14 * max(1, abs(float(expected_lse))))
            self.assertEqual(int(argmax), row.index(max(row)))
        self.assertEqual(output(["--argmax"], "1 9 3\n9 1 1\n"), "1\n0\n")
        got = output(["--logsumexp", "-s", "2", "-p", "17"], "1 2 3\n")
        expected = mpmath.log(mpmath.fsum(mpmath.exp(2 * mpmath.mpf(v)) for v in (1, 2, 3)))
        self.assertAlmostEqual(float(got), float(expected), delta=1e-14 * float(expected))

    def test_sampling_errors(self):
        self.assertFails(["--sample", "3"], EX_DATAERR, "row 2: nothing to sample", "1 2\nnan 1\n")
        self.assertFails(["--sample", "3", "-s", "-1"], EX_USAGE, "the scale must be >= 0")
        self.assertFails(["--sample", "3", "--entropy"], EX_USAGE, "one at a time")
        self.assertFails(["--entropy", "--plot"], EX_USAGE, "not --entropy")
        self.assertFails(["--argmax", "-o", self.path("a.npy")], EX_USAGE, "write text")
        self.assertFails(["--argmax", "--axis", "0"], EX_USAGE, "work along rows", "1 2\n")


def masks_available():
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as mask:
        mask.write("0 0\n")
        mask.flush()
        return run(["--mask", mask.name], "1 2\n", check=False)[0] != EX_UNAVAILABLE


@unittest.skipUnless(masks_available(), "this build of libsoftmax applies no masks (Errors checks the message)")
class Masks(Case):
    def test_one_row_applies_to_every_row(self):
        mask = self.write("m.txt", "0 -inf 0.5\n")
        got = rows_of(output(["--mask", mask, "-p", "17"], "1 2 3\n4 5 6\n"))
        self.assertRowsClose(got, [[a, 0, b] for a, b in (reference_softmax([1, 3.5]), reference_softmax([4, 6.5]))],
                             rtol=1e-15)

    def test_one_row_per_row_and_log_and_temperature(self):
        mask = self.write("m.txt", "0,0,-inf\n-inf,0,0\n")
        got = rows_of(output(["--mask", mask, "--log", "-t", "2", "-p", "17"], "1 2 3\n4 5 6\n"))
        a = reference_softmax([0.5, 1], log=True)
        b = reference_softmax([2.5, 3], log=True)
        self.assertEqual(got[0][2], float("-inf"))
        self.assertEqual(got[1][0], float("-inf"))
        self.assertRowsClose([got[0][:2], got[1][1:]], [a, b], rtol=1e-15, atol=1e-16)

    def test_npy_mask_broadcasts_over_leading_dimensions(self):
        x = np.random.default_rng(4).standard_normal((2, 3, 4))
        m = np.where(np.random.default_rng(5).random((3, 4)) < 0.3, -np.inf, 0.25)
        m[:, 0] = 0  # no line along either axis is fully masked (the reference
        m[0, :] = 0  # would give NaN where the library gives zeros)
        np.save(self.path("x.npy"), x)
        np.save(self.path("m.npy"), m.astype(np.float32))
        for axis in (-1, 1):
            run([self.path("x.npy"), "--mask", self.path("m.npy"), "--axis", str(axis), "-o", self.path("y.npy")])
            expected = numpy_softmax(x + m, axis=axis)
            np.testing.assert_allclose(np.load(self.path("y.npy")), expected, rtol=1e-14, atol=0)

    def test_mask_errors(self):
        mask = self.write("m.txt", "0 0\n")
        self.assertFails(["--mask", mask], EX_DATAERR, "--mask rows have 2 values", "1 2 3\n")
        mask = self.write("m2.txt", "0 0\n0 0\n")
        self.assertFails(["--mask", mask], EX_DATAERR, "--mask has 2 rows, the input at least 3", "1 2\n1 2\n1 2\n")
        # A mask with rows left over was written for another input: refused
        # at the end of the input, and an -o file is not written.
        self.assertFails(["--mask", mask], EX_DATAERR, "--mask has 2 rows, standard input 1", "1 2\n")
        source = self.write("one_row.txt", "1 2\n")
        self.assertFails([source, "--mask", mask, "-o", self.path("out.txt")], EX_DATAERR,
                         f"--mask has 2 rows, {source} 1")
        self.assertFalse(os.path.exists(self.path("out.txt")))
        self.assertFails(["--mask", mask, "--axis", "0"], EX_DATAERR, "--mask has 2 rows, standard input 1", "1 2\n")
        self.assertFails(["--mask", self.path("none.txt")], EX_NOINPUT, "cannot open the mask", "1 2\n")
        bad = self.write("bad.txt", "0 x\n")
        self.assertFails(["--mask", bad], EX_DATAERR, f"{bad}:1:3: expected a number, found 'x'", "1 2\n")
        np.save(self.path("x.npy"), np.zeros((2, 3)))
        np.save(self.path("m.npy"), np.zeros((2, 2)))
        self.assertFails([self.path("x.npy"), "--mask", self.path("m.npy")], EX_DATAERR, "--mask extent 2")


class Plot(Case):
    SWEEP = ["-t", "0.1,0.5,1,10", "--plot"]

    def test_golden_temperature_sweep(self):
        text = run(self.SWEEP, "2 1 3 5 4\n", env={"COLUMNS": "60"})[1]
        with open(os.path.join(GOLDEN, "plot_sweep_60.txt"), encoding="utf-8") as f:
            self.assertEqual(text, f.read())

    def test_golden_csv_log_plot(self):
        text = run(["--plot", "--log", "-s", "0.5"], "cat,dog,emu\n1,2,3\n", env={"COLUMNS": "50"})[1]
        with open(os.path.join(GOLDEN, "plot_csv_log_50.txt"), encoding="utf-8") as f:
            self.assertEqual(text, f.read())

    def test_bars_match_an_independent_drawing(self):
        # Each bar is round(p * width * 8) eighths of a cell, width being
        # what is left of COLUMNS after the label, two spaces and the value.
        row = [2, 1, 3, 5, 4]
        for columns in (40, 80, 133):
            text = run(["--plot"], "2 1 3 5 4\n", env={"COLUMNS": str(columns)})[1]
            lines = text.splitlines()
            self.assertEqual(lines[0], "row 1")
            p = reference_softmax(row)
            values = ["%.6g" % v for v in p]
            value_width = max(11, max(len(v) for v in values))  # precision + 5 at least
            width = columns - 1 - value_width - 2
            for i, line in enumerate(lines[1:]):
                eighths = int(p[i] * width * 8 + 0.5)
                bar = "\u2588" * (eighths // 8) + ("" if eighths % 8 == 0 else chr(0x2590 - eighths % 8))
                self.assertEqual(line, f"{i} {bar.ljust(width)} {values[i]}")
                self.assertEqual(len(line), columns - value_width + len(values[i]))

    def test_width_without_terminal_or_columns_is_80(self):
        text = run(["--plot"], "0 0\n")[1]
        self.assertEqual(max(len(line) for line in text.splitlines()), 80 - 11 + 3)  # "0.5" in 11 columns

    def test_rows_and_npy_lines_are_titled(self):
        text = run(["--plot", "-s", "2"], "1 2\n3 4\n", env={"COLUMNS": "40"})[1]
        self.assertIn("row 1 (scale 2)\n", text)
        self.assertIn("\n\nrow 2 (scale 2)\n", text)
        f = self.path("x.npy")
        np.save(f, np.zeros((2, 3)))
        text = run([f, "--plot", "--axis", "0"], env={"COLUMNS": "40"})[1]
        self.assertEqual(text.count("line "), 3)
        self.assertEqual(text.count(" 0.5\n"), 6)


    def test_column_plots_are_titled_by_the_header_and_their_bars_are_rows(self):
        """--axis 0 --plot draws one plot per column, whose bars are the rows: the header's
        names are the columns' (they titled the bars, so the two rows of a column were shown
        as 'cat' and 'dog')."""
        text = run(["--axis", "0", "--plot"], "cat,dog,emu\n1,2,3\n3,1,2\n", env={"COLUMNS": "40"})[1]
        self.assertEqual(text.count("column "), 3)
        self.assertIn("column 1: cat\n0 ", text)
        self.assertIn("column 3: emu\n0 ", text)
        self.assertNotIn("\ncat ", text)
        self.assertNotIn("\ndog ", text)
        text = run(["--axis", "0", "--plot", "-c", "2-", "--keep-labels"], "name,x,y\nrex,1,2\nfido,3,4\n",
                   env={"COLUMNS": "40"})[1]
        self.assertIn("column 2: y\n rex ", text)
        self.assertIn("\nfido ", text)


class Streaming(Case):
    def test_each_row_is_answered_before_the_input_ends(self):
        process = subprocess.Popen([CLI], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            for row, expected in (("1 2 3", b"0.0900306 0.244728 0.665241\n"), ("0 0", b"0.5 0.5\n")):
                process.stdin.write(row.encode() + b"\n")
                process.stdin.flush()
                self.assertEqual(process.stdout.readline(), expected)
        finally:
            process.stdin.close()
            process.wait(timeout=10)
            process.stdout.close()
        self.assertEqual(process.returncode, 0)

    def test_bounded_memory_on_a_long_generated_stream(self):
        megabytes = int(os.environ.get("SOFTMAX_CLI_STREAM_MB", "200"))
        row = b"0.125 -3.5 2.75 1e-3 4.0625 -0.5 7.25 3.875\n"

        def peak_rss_kib(count):
            # A fresh Python child generates the stream into the command's
            # stdin; RUSAGE_CHILDREN of the wrapper then holds the command's
            # peak resident set size (the generator is small).
            script = textwrap.dedent(f"""
                import resource, subprocess, sys
                p = subprocess.Popen([{CLI!r}], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                import threading
                lines = []
                def drain():
                    n = 0
                    for chunk in iter(lambda: p.stdout.read(1 << 20), b""):
                        n += chunk.count(b"\\n")
                    lines.append(n)
                t = threading.Thread(target=drain); t.start()
                block = {row!r} * 20000
                for _ in range({count}):
                    p.stdin.write(block)
                p.stdin.close(); t.join(); p.wait()
                print(p.returncode, lines[0], resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
            """)
            result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300, check=True)
            status, lines, rss = map(int, result.stdout.split())
            self.assertEqual(status, 0)
            self.assertEqual(lines, count * 20000)
            return rss

        small = peak_rss_kib(1)
        blocks = megabytes * (1 << 20) // (len(row) * 20000)
        large = peak_rss_kib(blocks)
        print(f"\nstream of {blocks * len(row) * 20000 / 2**20:.0f} MiB: peak RSS {large} KiB "
              f"(one block: {small} KiB)", file=sys.stderr)
        self.assertLess(large - small, 16 * 1024)

    def test_closed_pipe_downstream_is_quiet(self):
        result = subprocess.run(f"yes '1 2 3' | head -n 300000 | {CLI} | head -n 1", shell=True, capture_output=True,
                                timeout=60)
        self.assertEqual(result.stdout, b"0.0900306 0.244728 0.665241\n")
        self.assertEqual(result.stderr, b"")


def npy_with_header(path, header, data=b"", version=1):
    """A .npy file with a hand-written header dict (padded as NumPy pads it)."""
    text = header.encode()
    prefix = 10 if version == 1 else 12
    padded = text + b" " * ((-(prefix + len(text) + 1)) % 64) + b"\n"
    length = len(padded).to_bytes(2 if version == 1 else 4, "little")
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY" + bytes([version, 0]) + length + padded + data)
    return path


class BadInputs(Case):
    """The command's rows of docs/bad_inputs.md that Errors, NpyIO, Sampling and Masks do not back:
    each failure has its exit code and a message naming the file (line and column for text),
    and leaves no output file behind (or the previous one untouched)."""

    def assertFailsLeavingNothing(self, args, code, message, stdin="", outputs=("fresh.txt", "fresh.npy")):
        """Fails with code and message both with -o to a new file (never created) and over an
        existing one (unchanged), with no temporary file left beside it."""
        for name in outputs:
            out = self.path(name)
            before = set(os.listdir(self.tmp))
            self.assertFails(args + ["-o", out], code, message, stdin)
            self.assertFalse(os.path.exists(out), f"{args}: {name} was created")
            self.assertEqual(set(os.listdir(self.tmp)), before)
            self.write(name, "previous content\n")
            self.assertFails(args + ["-o", out], code, message, stdin)
            with open(out) as f:
                self.assertEqual(f.read(), "previous content\n")
            self.assertEqual(set(os.listdir(self.tmp)), before | {name})
            os.remove(out)

    def test_non_finite_text_is_data_not_an_error(self):
        self.assertEqual(output([], "1 nan 3\n"), "nan nan nan\n")
        self.assertEqual(output([], "NaN Infinity -INF 1\n"), "nan nan nan nan\n")
        self.assertEqual(output([], "1 inf 3\n"), "0 1 0\n")
        self.assertEqual(output([], "-inf -inf\n"), "0 0\n")
        self.assertEqual(output(["--log"], "-inf -inf\n"), "-inf -inf\n")
        # out of range decimals round to infinity, as strtod does
        self.assertEqual(output([], "1e999 2\n"), "1 0\n")
        self.assertEqual(output(["--dtype", "f32"], "1e39 2\n"), "1 0\n")
        self.assertEqual(output(["--scale", "1e400"], "1 2\n"), "0 1\n")

    def test_carriage_returns_before_the_line_feed_are_blanks(self):
        # CRLF (and blanks around the CR) stay what they were: line ends
        for text in ("1 2\r\n3 4\r\n", "1 2 \r \n3 4\r", "1,2\r\n# note\rx\n3,4\n"):
            with self.subTest(text=text):
                self.assertRowsClose(rows_of(output(["-p", "17"], text)),
                                     [reference_softmax([1, 2]), reference_softmax([3, 4])], rtol=1e-15)

    def test_malformed_numbers_name_line_and_column(self):
        cases = [("1 2e\n", "1:3: expected a number, found '2e'"),
                 ("1 --2\n", "1:3: expected a number, found '--2'"),
                 ("1.2.3 4\n", "1:1: expected a number, found '1.2.3'"),
                 ("1\t2\tx\n", "1:5: expected a number, found 'x'"),
                 ("1 2\n1;2\n", "2:1: expected a number, found '1;2'"),
                 ("# comment\n\n1 2\n3 0x\n", "4:3: expected a number, found '0x'"),
                 ("1 " + "a" * 60 + "\n", "1:3: expected a number, found '" + "a" * 40 + "...'"),
                 ("1 2\x00 3\n", "1:4: expected a number, found a NUL byte"),
                 ("1 \x002\n", "1:3: expected a number, found a NUL byte"),
                 # classic Mac line ends: the rows ran together into one row of four (exit 0)
                 ("1 2\r3 4\r", "1:4: a carriage return inside the line: lines end with a line feed (classic Mac "
                                 "line ends? convert them with tr '\\r' '\\n')"),
                 ("1 2\n5,6\r7\n", "2:4: a carriage return inside the line: lines end with a line feed (classic "
                                   "Mac line ends? convert them with tr '\\r' '\\n')")]
        for text, message in cases:
            for dtype in ("f64", "f32"):
                with self.subTest(text=text, dtype=dtype):
                    status, out, err = run(["--dtype", dtype], text, check=False)
                    self.assertEqual(status, EX_DATAERR, err)
                    self.assertEqual(err, f"softmax: standard input:{message}\n")
                    self.assertEqual(out, "")
        f = self.write("data.txt", "1 2\n3 x\n")
        self.assertFailsLeavingNothing([f], EX_DATAERR, f"{f}:2:3: expected a number, found 'x'")

    def test_ragged_rows_are_rows_unless_a_matrix_is_needed(self):
        self.assertEqual(output([], "1 2 3\n4 5\n"), "0.0900306 0.244728 0.665241\n0.268941 0.731059\n")
        self.assertFailsLeavingNothing([], EX_DATAERR, "standard input:2: ragged rows: this row has 2 values, "
                                       "line 1 has 3; a .npy output needs a matrix", "1 2 3\n4 5\n",
                                       outputs=("fresh.npy",))
        self.assertFailsLeavingNothing(["--axis", "0"], EX_DATAERR, "standard input:2: ragged rows: this row has 2 "
                                       "values, line 1 has 3; --axis 0 needs a matrix", "1 2 3\n4 5\n")
        mask = self.write("ragged.txt", "0 0 0\n0 0\n")
        self.assertFails(["--mask", mask], EX_DATAERR, f"{mask}:2: ragged rows: this row has 2 values, line 1 has 3; "
                         "a --mask is a matrix", "1 2 3\n")

    def test_empty_inputs(self):
        for text in ("", "\n\n", "   \t\n", "# only comments\n#\n", "a,b,c\n", "\ufeff\n"):
            with self.subTest(text=text):
                self.assertFailsLeavingNothing(["--require-input"], EX_DATAERR,
                                               "standard input: empty input: no row of numbers", text)
        self.assertFails(["--header", "--require-input"], EX_DATAERR, "empty input", "1 2\n")
        empty = self.write("empty.npy", "")
        self.assertFails([empty], EX_DATAERR, f"{empty}: not a .npy file this command reads: shorter than a .npy "
                         "header")

    def test_bad_npy_headers_dtypes_and_data(self):
        f = self.path("bad.npy")
        good = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
        cases = [
            (lambda: npy_with_header(f, good, b"\0" * 8), "the data is truncated: the shape needs 16 bytes, the file "
                                                          "has 8"),
            (lambda: npy_with_header(f, good, b"\0" * 16, version=9), "unknown .npy format version"),
            (lambda: npy_with_header(f, good.replace("(2,)", "(1, 1, 1, 1, 1, 1, 1, 1, 1)"), b"\0" * 8),
             "more than 8 dimensions"),
            (lambda: npy_with_header(f, good.replace("(2,)", "(4294967296, 4294967296, 4294967296)")),
             "the shape's byte size overflows"),
            (lambda: npy_with_header(f, good.replace("(2,)", "(2305843009213693952,)"), b"\0" * 8),
             "the shape's byte size overflows"),
            (lambda: npy_with_header(f, good.replace("(2,)", "(2, x)")), "a 'shape' entry is not a non-negative "
                                                                          "integer"),
            (lambda: npy_with_header(f, good.replace("(2,)", "(-2,)")), "a 'shape' entry is not a non-negative "
                                                                         "integer"),
            (lambda: npy_with_header(f, good.replace("(2,)", "(2; 3)")), "malformed 'shape' tuple"),
            (lambda: npy_with_header(f, good.replace("'shape': (2,), ", "")), "the header has no 'shape' tuple"),
            (lambda: npy_with_header(f, good.replace("'descr': '<f8', ", "")), "the header has no 'descr'"),
            (lambda: npy_with_header(f, good.replace("'fortran_order': False, ", "")),
             "the header has no 'fortran_order'"),
            (lambda: npy_with_header(f, good.replace("'<f8'", "[('a', '<f4')]")), "'descr' is not a simple type"),
            (lambda: np.save(f, np.ones(3, np.complex128)), "data type '<c16'; expected float16, float32 or float64"),
            (lambda: np.save(f, np.array([1, "a"], dtype=object), allow_pickle=True), "data type '|O'"),
            (lambda: np.save(f, np.ones(3, np.int64)), "data type '<i8'"),
            (lambda: np.save(f, np.ones(3, bool)), "data type '|b1'"),
        ]
        for make, message in cases:
            with self.subTest(message=message):
                make()
                self.assertFailsLeavingNothing([f], EX_DATAERR, f"{f}: not a .npy file this command reads: {message}")
        with open(f, "wb") as handle:  # the header length runs past the end
            handle.write(b"\x93NUMPY\x01\x00\x88\x13{}")
        self.assertFails([f], EX_DATAERR, "the header runs past the end of the file")
        os.mkdir(self.path("dir.npy"))
        self.assertFails([self.path("dir.npy")], EX_NOINPUT, "dir.npy: a .npy input must be a regular file")
        np.save(self.path("m.npy"), np.zeros(2, np.int16))
        self.assertFails(["--mask", self.path("m.npy")], EX_DATAERR, "m.npy: not a .npy file this command reads: "
                         "data type '<i2'", "1 2\n")

    def test_bad_option_values(self):
        cases = [(["--scale", ""], "--scale: expected a number, got ''"),
                 (["--scale=abc"], "--scale: expected a number, got 'abc'"),
                 (["--scale", "-nan"], "--scale: expected a number"),
                 (["-t", ""], "--temperature: expected a number or a comma-separated list, got ''"),
                 (["-t", "1,,2"], "--temperature: an empty item in the list '1,,2'"),
                 (["-t", "1,"], "--temperature: an empty item in the list '1,'"),
                 (["-t", ",1"], "--temperature: an empty item in the list ',1'"),
                 (["-t", "nan"], "--temperature: expected a number, got 'nan'"),
                 (["--axis", "x"], "--axis: expected an integer in [-8, 7], got 'x'"),
                 (["--axis", "1.5"], "--axis: expected an integer in [-8, 7], got '1.5'"),
                 (["--dtype", "bf16"], "--dtype: expected f32 or f64, got 'bf16'"),
                 (["-p", "18"], "--precision: expected an integer in [1, 17], got '18'"),
                 (["--threads", "x"], "--threads: expected an integer in [1, 1024], got 'x'"),
                 (["--threads", "2000"], "--threads: expected an integer in [1, 1024], got '2000'"),
                 (["--sample", "x"], "--sample: expected an integer in [1, "),
                 (["--sample", "99999999999999999999"], "--sample: expected an integer in [1, 9223372036854775807]"),
                 (["--sample", "2", "--top-k", "-1"], "--top-k: expected an integer in [1, 9223372036854775807], got "
                                                      "'-1'"),
                 (["--sample", "2", "--seed", "-1"], "--seed: expected an integer in [0, 18446744073709551615], "
                                                     "got '-1'"),
                 (["--sample", "2", "--seed", " 1"], "--seed: expected an integer in [0, 18446744073709551615]"),
                 (["--sample", "2", "--seed", "0x10"], "--seed: expected an integer in [0, 18446744073709551615]"),
                 (["--sample", "2", "--seed", "18446744073709551616"], "--seed: expected an integer"),
                 (["--sample", "2", "--top-p", "nan"], "--top-p: expected a number, got 'nan'"),
                 (["--sample", "2", "--top-p", "0"], "--top-p: expected a probability in (0, 1], got '0'"),
                 (["--sample", "2", "--min-p", "1.5"], "--min-p: expected a probability in [0, 1]"),
                 (["--sample", "2", "-t", "-1"], "--sample: the temperature must be >= 0"),
                 (["--sample", "2", "-s", "-inf"], "--sample: the scale must be >= 0"),
                 (["--top-k", "2"], "--seed, --top-k, --top-p, --min-p and --counts go with --sample N"),
                 (["--mask", "m.txt", "--sample", "2"], "--mask does not combine with --sample"),
                 (["--scale"], "option '--scale' needs an argument"),
                 (["--mask"], "option '--mask' needs an argument"),
                 (["--scales", "2"], "unknown option '--scales'")]
        expect_usage_errors(self, cases, try_help=True)
        # found when the input turns out to be text, after the output was opened
        self.assertFailsLeavingNothing(["--axis", "3"], EX_USAGE, "--axis 3: text input is a matrix (rows x columns)",
                                       "1 2\n")
        # limits that are not errors: a negative temperature is a negative scale (softmin)
        self.assertEqual(output(["-t", "-1"], "1 2\n"), output(["-s", "-1"], "1 2\n"))
        self.assertEqual(output(["--scale", "inf"], "1 2\n"), "0 1\n")

    def test_numeric_options_take_the_whole_argument_as_the_input_would(self):
        """A number in an option is written as in the input: no blanks around it (strtod and
        strtoll skip leading ones: -j ' 2' was taken), no '+' and no minus sign on an integer
        but --axis's, no other base; a number that is not 0 but below the smallest double is
        refused rather than made 0 (-t -1e-400 was the temperature 0, the arg max, not the
        arg min of a tiny negative temperature)."""
        blank = " (blanks are not part of a number)"
        cases = [(["-j", " 2"], "--threads: expected an integer in [1, 1024], got ' 2'" + blank),
                 (["-j", "2 "], "--threads: expected an integer in [1, 1024], got '2 '" + blank),
                 (["-j", "+2"], "--threads: expected an integer in [1, 1024], got '+2'"),
                 (["-j", "\t2"], "--threads: expected an integer in [1, 1024], got '\t2'" + blank),
                 (["-p", " 3"], "--precision: expected an integer in [1, 17], got ' 3'" + blank),
                 (["-p", "+3"], "--precision: expected an integer in [1, 17], got '+3'"),
                 (["-p", "0x3"], "--precision: expected an integer in [1, 17], got '0x3'"),
                 (["--axis", "+1"], "--axis: expected an integer in [-8, 7], got '+1'"),
                 (["--axis", " -1"], "--axis: expected an integer in [-8, 7], got ' -1'" + blank),
                 (["--axis", "- 1"], "--axis: expected an integer in [-8, 7], got '- 1'" + blank),
                 (["--axis", "--1"], "--axis: expected an integer in [-8, 7], got '--1'"),
                 (["--sample", " 3"], "--sample: expected an integer in [1, 9223372036854775807], got ' 3'" + blank),
                 (["--sample", "+3"], "--sample: expected an integer in [1, 9223372036854775807], got '+3'"),
                 (["--sample", "2", "--top-k", "2\n"], "--top-k: expected an integer in [1, 9223372036854775807]"),
                 (["--sample", "2", "--seed", "1 "], "--seed: expected an integer in [0, 18446744073709551615], got "
                                                     "'1 '" + blank),
                 (["--sample", "2", "--seed", "+1"], "--seed: expected an integer in [0, 18446744073709551615], got "
                                                     "'+1'"),
                 (["--max-line-length", " 16"], "--max-line-length: expected a positive size in bytes (suffix K, M "
                                                "or G allowed), got ' 16'" + blank),
                 (["--max-line-length", "+16"], "--max-line-length: expected a positive size in bytes"),
                 (["--max-line-length", "16 K"], "--max-line-length: expected a positive size in bytes"),
                 (["--max-line-length", "-0"], "--max-line-length: expected a positive size in bytes"),
                 (["-s", " 2"], "--scale: expected a number, got ' 2'" + blank),
                 (["-s", "2 "], "--scale: expected a number, got '2 '" + blank),
                 (["-s", "\n2"], "--scale: expected a number, got '\n2'" + blank),
                 (["-s", "+-2"], "--scale: expected a number, got '+-2'"),
                 (["-s", "1,5"], "--scale: expected a number, got '1,5'"),
                 (["-t", " 1"], "--temperature: expected a number, got ' 1'" + blank),
                 (["-t", "1, 2"], "--temperature: expected a number, got ' 2'" + blank),
                 (["--sample", "2", "--top-p", " 0.5"], "--top-p: expected a number, got ' 0.5'" + blank),
                 (["--sample", "2", "--min-p", "0.5 "], "--min-p: expected a number, got '0.5 '" + blank),
                 (["-s", "1e-400"], "--scale: '1e-400' is not 0 but smaller than the smallest double (4.9e-324)"),
                 (["-t", "-1e-400"], "--temperature: '-1e-400' is not 0 but smaller than the smallest double"),
                 (["-t", "1,0x1p-1100"], "--temperature: '0x1p-1100' is not 0 but smaller than the smallest"),
                 (["--sample", "2", "--min-p", "1e-999"], "--min-p: '1e-999' is not 0 but smaller than the smallest")]
        expect_usage_errors(self, cases)
        # what stays valid: the forms of a number in the input, zero written as zero, --axis's
        # minus sign, leading zeros, the size suffixes in either case
        for args in (["-s", "0x1p1"], ["-s", "+2"], ["-s", "2."], ["-s", ".2e1"], ["-s", "2" + "0" * 400 + "e-400"]):
            self.assertEqual(output(args, "1 2 3\n"), "0.0158762 0.11731 0.866813\n", args)
        for args in (["-t", "0e5"], ["-t", "-0.000"], ["-t", "0x0p-2000"], ["-s", "inf"]):
            self.assertEqual(output(args, "1 3 3\n"), "0 0.5 0.5\n", args)
        self.assertEqual(output(["-s", "1e-320"], "1 2\n"), "0.5 0.5\n")
        self.assertEqual(output(["-j", "002", "-p", "03", "--axis", "-1"], "1 2\n"), "0.269 0.731\n")
        self.assertEqual(output(["--axis", "-0"], "1\n3\n"), "0.119203\n0.880797\n")
        for size in ("16k", "16K", "1m", "1M", "1g", "1G", "4096"):
            self.assertEqual(output(["--max-line-length", size], "1 2\n"), "0.268941 0.731059\n", size)

    def test_an_undefined_scale_over_temperature_is_a_usage_error(self):
        # S / T = inf / inf went to the library as NaN: "libsoftmax: scale is NaN", status 70 (the
        # library's failure), or for --sample a temperature "-nan" out of range
        for args in (["-s", "inf", "-t", "inf"], ["-s", "-inf", "-t", "1,inf"], ["-s", "inf", "-t", "-inf"],
                     ["-s", "inf", "-t", "inf", "--argmax"], ["-s", "inf", "-t", "inf", "--sample", "2"]):
            with self.subTest(args=args):
                self.assertFailsLeavingNothing(args, EX_USAGE, "with --scale", "1 2\n")
                err = self.assertFails(args, EX_USAGE, "the scale S / T is undefined", "1 2\n")
                self.assertRegex(err, r"--temperature -?inf with --scale -?inf")
        # the other limits stay: S / T = inf x 0 or 0 / inf
        self.assertEqual(output(["-s", "inf", "-t", "0"], "1 2\n"), "0 1\n")
        self.assertEqual(output(["-s", "0", "-t", "inf"], "1 2\n"), "0.5 0.5\n")
        self.assertEqual(output(["-s", "1e300", "-t", "1e-300"], "1 2\n"), "0 1\n")

    def test_unreadable_input(self):
        self.assertFails([self.tmp], EX_NOINPUT, f"{self.tmp}: read failed: Is a directory")
        self.assertFails([self.path("none.npy")], EX_NOINPUT, "none.npy: cannot open: No such file or directory")
        self.assertFails(["--mask", self.tmp], EX_NOINPUT, "read failed: Is a directory", "1 2\n")
        self.assertFailsLeavingNothing([self.path("none.txt")], EX_NOINPUT, "none.txt: cannot open")

    def test_unwritable_output(self):
        self.assertFails(["-o", "/dev/full"], 74, "/dev/full: write failed: No space left on device", "1 2\n")
        self.assertFails(["-o", self.tmp], EX_CANTCREAT, f"{self.tmp}: cannot open the output: Is a directory",
                         "1 2\n")
        self.assertFails(["-o", self.path("none/y.npy")], EX_CANTCREAT, "cannot create the output file", "1 2\n")
        self.assertEqual(os.listdir(self.tmp), [])

    def test_rows_without_a_distribution_name_file_and_line(self):
        f = self.write("logits.txt", "# logits\n1 2\n\n-inf -inf\n")
        for args in (["--sample", "3"], ["--sample", "3", "-t", "0"], ["--sample", "2", "--counts"]):
            with self.subTest(args=args):
                self.assertFailsLeavingNothing(args + [f], EX_DATAERR, f"softmax: {f}:4: row 2: nothing to sample: "
                                               "the row has a NaN or no logit above -inf", outputs=("fresh.txt",))
        self.assertFails(["--sample", "1"], EX_DATAERR, "standard input:3: row 3: nothing to sample", "1\n2\nnan 1\n")
        x = self.path("x.npy")
        np.save(x, np.array([[1.0, 2.0], [np.nan, 1.0]], np.float32))
        self.assertFailsLeavingNothing(["--sample", "2", x], EX_DATAERR, f"softmax: {x}: row 2: nothing to sample",
                                       outputs=("fresh.txt",))
        # the row statistics give the contract's values instead
        self.assertEqual(output(["--entropy", "--logsumexp", "--argmax"], "1 nan\n-inf -inf\n"),
                         "nan nan 1\n0 -inf 0\n")


if __name__ == "__main__":
    unittest.main()


class SilentOutput(Case):
    """Inputs and options that once gave a wrong result with exit status 0."""

    def test_format_output_is_never_cut(self):
        got = output(["-f", "%.60e"], "1 2 3\n").split()
        self.assertEqual(len(got), 3)
        for g, e in zip(got, reference_softmax([1, 2, 3])):
            self.assertEqual(g, "%.60e" % e)
        self.assertEqual(float(output(["--log", "-f", "%f"], "1e300 0\n").split()[1]), -1e300)
        self.assertEqual(output(["-f", "%70.2f"], "1 1\n"), " " * 66 + "0.50 " + " " * 66 + "0.50\n")
        wide = output(["-f", "%.9999f"], "1 1\n").split()
        self.assertEqual(wide, ["0.5" + "0" * 9998] * 2)
        self.assertFails(["-f", "%.99999f"], EX_USAGE, "width and precision go up to 9999", "1\n")
        # statistics and samples go through the same formatter
        self.assertEqual(output(["--entropy", "-f", "%.50f"], "0 0\n"), "%.50f\n" % np.log(2))

    def test_decimal_commas_are_refused_when_ambiguous(self):
        err = self.assertFails([], EX_DATAERR, "standard input:1:2: ambiguous separators", "1,5 2,5\n")
        self.assertIn("column 4", err)
        self.assertIn("--delimiter", err)
        self.assertFails([], EX_DATAERR, "standard input:2:4: ambiguous separators", "1 2\n0 1,5 2\n")
        # unambiguous lines: CSV, CSV with blanks, blanks alone
        self.assertEqual(output([], "1,2\n1, 2\n1 , 2\n1 2\n"), "0.268941 0.731059\n" * 4)
        # the user decides
        self.assertEqual(output(["--delimiter", ","], "1,2\n"), "0.268941 0.731059\n")
        self.assertFails(["--delimiter", " "], EX_DATAERR, "1:3: expected a number, found '1,5' (decimal commas are "
                         "not read", "1 1,5\n")

    def test_negative_zero_temperature_is_zero(self):
        self.assertEqual(output(["-t", "-0"], "1 3 2\n"), output(["-t", "0"], "1 3 2\n"))
        self.assertEqual(output(["-t", "-0"], "1 3 2\n"), "0 1 0\n")
        self.assertEqual(output(["-t", "-0.0,1"], "1 3 2\n").splitlines()[1], "0 1 0")

    def test_float16_file_gives_float16_output(self):
        x = np.array([[1, 2, 3], [0.5, -1, 4]], dtype=np.float16)
        np.save(self.path("h.npy"), x)
        run([self.path("h.npy"), "-o", self.path("y.npy")])
        y = np.load(self.path("y.npy"))
        self.assertEqual(y.dtype, np.float16)
        # the f32 result rounded once to float16: within half a float16 ulp of the exact value
        exact = numpy_softmax(x.astype(np.float64))
        self.assertTrue(np.all(np.abs(y.astype(np.float64) - exact) <= np.spacing(y.astype(np.float16)) / 2 * 1.001))
        run([self.path("h.npy"), "--dtype", "f32", "-o", self.path("y.npy")])
        self.assertEqual(np.load(self.path("y.npy")).dtype, np.float32)

    def test_zero_dimensional_array_stays_zero_dimensional(self):
        np.save(self.path("s.npy"), np.float32(7.0))
        run([self.path("s.npy"), "-o", self.path("y.npy")])
        y = np.load(self.path("y.npy"))
        self.assertEqual(y.shape, ())
        self.assertEqual(y.dtype, np.float32)
        self.assertEqual(float(y), 1.0)
        run([self.path("s.npy"), "-t", "1,2", "-o", self.path("y.npy")])
        self.assertEqual(np.load(self.path("y.npy")).shape, (2,))

    def test_npy_headers_are_parsed_as_numpy_does(self):
        f = self.path("h.npy")
        base = "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }"
        refused = [
            (base % "(0,\t-1)", "a 'shape' entry is not a non-negative integer"),
            (base % "(0, 18446744073709551615)", "larger than numpy allows"),
            (base % "(0, 9223372036854775808)", "larger than numpy allows"),
            (base % "(0, 4611686018427387904, 4)", "the shape's byte size overflows"),
            (base % "(2)", "'shape' is not a tuple"),
            ("{'note': \"'descr': '<f4'\", " + (base % "(2,)")[1:], "unexpected key 'note'"),
            ("{'descr': '<f4', " + (base % "(2,)")[1:], "repeated key 'descr'"),
            ((base % "(2,)") + " x", "text after its dict"),
            (base.replace("False", "0") % "(2,)", "'fortran_order' is not True or False"),
            (base.replace("'<f8'", "'<f\\x38'") % "(2,)", "'descr' is not a quoted type string"),
        ]
        # numpy reads these two (a repeated key keeps its last value; escapes in strings) while the
        # command refuses to guess
        stricter = {refused[6][0], refused[9][0]}
        for header, message in refused:
            with self.subTest(header=header):
                npy_with_header(f, header, b"\0" * 16)
                self.assertFails([f], EX_DATAERR, message)
                if header not in stricter:
                    with self.assertRaises(Exception):  # numpy refuses it too
                        np.load(f)
        # what numpy accepts is read: tabs and newlines between tokens, any key order, double quotes
        accepted = ['{"shape": (2,\t),\n "fortran_order": False, "descr": "<f8"}',
                    "{'descr':'<f8','fortran_order':False,'shape':(1,2)}",
                    base % "(0, 1152921504606846975)"]
        for header in accepted:
            with self.subTest(header=header):
                npy_with_header(f, header, np.array([1.0, 3.0]).tobytes())
                x = np.load(f)
                run([f, "-o", self.path("y.npy")])
                y = np.load(self.path("y.npy"))
                self.assertEqual(y.shape, x.shape)
                if x.size:
                    np.testing.assert_allclose(y.reshape(-1), numpy_softmax([1.0, 3.0]), rtol=1e-15)

    def test_write_errors_exit_74(self):
        for args in (["--help"], ["--version"], []):
            with self.subTest(args=args), open("/dev/full", "w") as full:
                result = subprocess.run([CLI] + args, input=b"1 2\n", stdout=full, stderr=subprocess.PIPE)
                self.assertEqual(result.returncode, 74)
                self.assertIn(b"write failed: No space left on device", result.stderr)
        # a closed pipe downstream with SIGPIPE ignored: reported, not a silent success
        with open(self.path("in.txt"), "w") as f:
            f.write("1 2 3\n" * 300000)
        with open(self.path("in.txt")) as stdin:
            process = subprocess.Popen([CLI], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       preexec_fn=lambda: signal.signal(signal.SIGPIPE, signal.SIG_IGN))
            process.stdout.readline()
            process.stdout.close()
            err = process.stderr.read()
            process.wait(timeout=60)
        self.assertEqual(process.returncode, 74)
        self.assertIn(b"standard output: write failed: Broken pipe", err)

    def test_plot_is_never_silently_ignored(self):
        self.assertFails(["--plot", "-o", self.path("y.npy")], EX_USAGE, "--plot draws text", "1 2\n")
        self.assertFails(["--plot", "-f", "%.2f"], EX_USAGE, "--plot prints its values with --precision", "1 2\n")

    def test_repeated_options_are_refused(self):
        for args in (["-s", "1", "-s", "2"], ["--axis", "0", "-a", "1"], ["-p", "3", "-p", "4"],
                     ["-o", "a", "-o", "b"], ["--dtype", "f32", "--dtype", "f64"], ["-f", "%f", "-f", "%g"]):
            with self.subTest(args=args):
                self.assertFails(args, EX_USAGE, "given twice", "1 2\n")
        # -t accumulates (one block per temperature), flags may repeat
        self.assertEqual(output(["-t", "1", "-t", "2", "--log", "--log"], "0 0\n").count("#"), 2)

    def test_long_numbers_follow_the_same_rule_as_large_exponents(self):
        # any length of digits is a number, rounded as strtod rounds it
        long_number = "1." + "0" * 600 + "1"
        self.assertEqual(output(["-p", "17"], f"{long_number} 1\n"), "0.5 0.5\n")
        self.assertEqual(output(["-p", "17"], "0." + "0" * 699 + "1e700 0\n"), output(["-p", "17"], "1 0\n"))
        self.assertEqual(output([], "1e999 0\n"), "1 0\n")

    def test_control_characters_in_messages_are_quoted(self):
        err = self.assertFails([], EX_DATAERR, "standard input:2:1: expected a number, found '\\x1b]0;x\\a'",
                               "1\n\x1b]0;x\x07\n")
        self.assertNotIn("\x1b", err)
        self.assertNotIn("\x07", err)
        err = self.assertFails([], EX_DATAERR, "found 'caf\u00e9\\xc2\\x9b'", "1 caf\u00e9\u009b\n")
        # not UTF-8: every byte shown as an escape
        result = subprocess.run([CLI], input=b"1 \xff\xfe\n", capture_output=True)
        self.assertIn(b"found '\\xff\\xfe'", result.stderr)
        np.save(self.path("x.npy"), np.zeros(2))
        with open(self.path("x.npy"), "r+b") as f:
            head = f.read(64).replace(b"'<f8'", b"'\x1b[2J'")
            f.seek(0)
            f.write(head)
        err = self.assertFails([self.path("x.npy")], EX_DATAERR, "data type '\\x1b[2J'")
        self.assertNotIn("\x1b", err)

    def test_invisible_and_reordering_characters_in_messages_are_escaped(self):
        """A byte order mark in the middle of a stream (cat a.csv b.csv), zero-width characters and
        bidirectional overrides were shown as they are: the message read "found '1'" for a token that
        is not 1, or came out reordered on the terminal."""
        self.assertFails([], EX_DATAERR, "standard input:2:1: expected a number, found '\\ufeff1'",
                         "1 2\n\ufeff1 2\n")
        err = self.assertFails([], EX_DATAERR, "standard input:1:3: expected a number, found "
                               "'a\\u202eb\\u200b\\U000e0001'", "1 a\u202eb\u200b\U000e0001\n")
        for invisible in ("\ufeff", "\u202e", "\u200b", "\U000e0001"):
            self.assertNotIn(invisible, err)
        # visible characters beyond ASCII stay as they are
        self.assertFails([], EX_DATAERR, "found '\u00e9\u732b'", "1 \u00e9\u732b\n")


class Friction(Case):
    """What a new user runs into."""

    def test_one_column_input_gets_a_hint(self):
        status, out, err = run([], "1\n2\n3\n")
        self.assertEqual(out, "1\n1\n1\n")
        self.assertIn("every row has one number", err)
        self.assertIn("--axis 0", err)
        status, out, err = run(["--axis", "0"], "1\n2\n3\n")
        self.assertEqual(err, "")
        np.testing.assert_allclose([float(v) for v in out.split()], reference_softmax([1, 2, 3]), rtol=1e-5)
        self.assertEqual(run([], "1 2\n")[2], "")

    def test_a_lone_header_line_is_explained(self):
        for text, hint in (("1;2;3\n", "--delimiter ';'"), ('"1","2"\n', "quoted numbers are not read"),
                           ("\uff11 \uff12\n", "full-width digits"), ("a|b\n", "--delimiter '|'")):
            with self.subTest(text=text):
                status, out, err = run([], text)
                self.assertEqual((status, out), (0, ""))
                self.assertIn("standard input:1: no row of numbers: the only line with text has no number", err)
                self.assertIn(hint, err)
        self.assertEqual(output(["-d", ";"], "1;2;3\n"), "0.0900306 0.244728 0.665241\n")
        # a header followed by rows is a header, quietly
        self.assertEqual(run([], "a,b\n1,1\n"), (0, "0.5 0.5\n", ""))

    def test_columns_and_delimiter_select_the_numbers(self):
        csv = "name,x,y,z\nalice,1,2,3\nbob,0,0,0\n"
        self.assertFails([], EX_DATAERR, "standard input:2:1: expected a number, found 'alice'", csv)
        self.assertEqual(output(["--columns", "2-"], csv), "0.0900306 0.244728 0.665241\n0.333333 0.333333 0.333333\n")
        self.assertEqual(output(["-c", "2,4"], csv), "0.119203 0.880797\n0.5 0.5\n")
        self.assertEqual(output(["-c", "2-3", "-d", ","], "a b,1,1\n"), "0.5 0.5\n")
        self.assertEqual(output(["-d", "tab"], "1\t2\n"), "0.268941 0.731059\n")
        self.assertFails(["-c", "5"], EX_DATAERR, "standard input:1: the line has 3 fields; --columns names field 5",
                         "1 2 3\n")
        self.assertFails(["-d", ";"], EX_DATAERR, "standard input:2:3: expected the delimiter ';'", "1;2\n3 4\n")
        # with a delimiter that is not a blank, a field that is not a number may hold blanks
        self.assertEqual(output(["-d", ";", "-c", "2-"], "full name;x;y\nAda Lovelace;0;0\n"), "0.5 0.5\n")
        plot = run(["-d", ";", "-c", "2-", "--plot"], "full name;x y;z\n1;0;0\n", env={"COLUMNS": "40"})[1]
        self.assertIn("x y ", plot)
        for bad in ("0", "3-2", "a", "1,", "-2"):
            self.assertFails(["-c", bad], EX_USAGE, "--columns: expected fields numbered from 1", "1\n")
        self.assertFails(["-d", "."], EX_USAGE, "--delimiter: expected one character", "1\n")
        # the plot's labels are the selected columns' names
        plot = run(["-c", "2-", "--plot"], csv, env={"COLUMNS": "60"})[1]
        self.assertIn("x ", plot)
        self.assertNotIn("name", plot)

    def test_a_tab_delimiter_separates_single_fields_as_cut_does(self):
        # Every tab ends one field, so that the empty fields of a TSV count
        # in --columns as in cut -f, as commas do with -d ','.
        three = "0.0900306 0.244728 0.665241\n"
        for spelling in ("tab", "\\t", "\t"):
            with self.subTest(spelling=spelling):
                self.assertEqual(output(["-d", spelling, "-c", "3-"], "x\t\t1\t2\t3\n"), three)
        self.assertEqual(output(["-d", ",", "-c", "3-"], "x,,1,2,3\n"), three)
        self.assertEqual(output(["-d", "tab", "-c", "2-"], "\t1\t2\t3\n"), three)  # an empty first field
        self.assertEqual(output(["-d", "tab", "-c", "1-3"], "1\t2\t3\t\n"), three)  # an empty last one, not selected
        self.assertEqual(output(["-d", "tab"], " 1 \t 2\t3 \r\n"), three)  # spaces around a number: padding
        self.assertEqual(output(["-d", "tab", "-c", "2-", "--keep-labels"], "Ada Lovelace\t1\t2\t3\n"),
                         "Ada Lovelace " + three)
        # an empty field that is selected is an error naming it, as with ','
        self.assertFails(["-d", "tab"], EX_DATAERR, "standard input:1:3: expected a number before '\\t'", "1\t\t2\n")
        self.assertFails(["-d", ","], EX_DATAERR, "standard input:1:3: expected a number before ','", "1,,2\n")
        self.assertFails(["-d", "tab"], EX_DATAERR, "standard input:1:1: expected a number before '\\t'", "\t1\t2\n")
        self.assertFails(["-d", "tab"], EX_DATAERR, "standard input:1:4: expected a number after '\\t'", "1\t2\t\n")
        self.assertFails(["-d", "tab", "-c", "4"], EX_DATAERR, "the line has 3 fields", "1\t\t2\n")
        self.assertFails(["-d", "tab"], EX_DATAERR, "expected the delimiter '\\t'", "1 2\t3\n")
        # a header's empty fields count too: the bars are named by fields 3 and 4
        for delimiter, table in (("tab", "name\t\tx\ty\nA\t\t1\t2\n"), (",", "name,,x,y\nA,,1,2\n")):
            with self.subTest(delimiter=delimiter):
                plot = run(["-d", delimiter, "-c", "3-", "--plot"], table, env={"COLUMNS": "40"})[1]
                self.assertRegex(plot, r"(?m)^ *x ")
                self.assertRegex(plot, r"(?m)^ *y ")
        # without -d (and with -d space) runs of blanks, tabs included, still make one separator
        self.assertEqual(output(["-c", "2-"], "x\t\t1 \t 2   3\n"), three)
        self.assertEqual(output(["-d", "space", "-c", "2-"], "x\t\t1 \t 2   3\n"), three)

    def test_label_columns_can_be_kept_beside_the_results(self):
        csv = "name,x,y,z\nAda Lovelace,1,2,3\nbob,0,0,0\n"
        self.assertEqual(output(["-d", ",", "-c", "2-", "--keep-labels"], csv),
                         "Ada Lovelace 0.0900306 0.244728 0.665241\nbob 0.333333 0.333333 0.333333\n")
        table = "id name x y\n7 ada 1 2\n8 bob 0 0\n"
        self.assertEqual(output(["-c", "3-", "--keep-labels", "--argmax"], table), "argmax\n7 ada 1\n8 bob 0\n")
        self.assertEqual(output(["-c", "3-", "--keep-labels", "--sample", "5", "-t", "0"], table),
                         "7 ada 1 1 1 1 1\n8 bob 0 0 0 0 0\n")
        self.assertIn("row 1: 7 ada\n", run(["-c", "3-", "--keep-labels", "--plot"], table, env={"COLUMNS": "40"})[1])
        self.assertFails(["--keep-labels"], EX_USAGE, "give --columns too", "1 2\n")
        self.assertFails(["-c", "2-", "--keep-labels", "-o", self.path("y.npy")], EX_USAGE, "--keep-labels writes text",
                         "a 1 2\n")
        # An empty field counts in the labels' numbering as in the numbers': field 3 is the number (33),
        # the labels are fields 1 and 4, with or without -d.
        for delimiter in ([], ["-d", ","], ["-d", "tab"]):
            text = "a,,33,5\n" if delimiter != ["-d", "tab"] else "a\t\t33\t5\n"
            self.assertEqual(output(delimiter + ["-c", "3", "--keep-labels", "--logsumexp", "-p", "3"], text),
                             "a 5 33\n", delimiter)

    def test_labels_of_a_text_input_are_not_carried_to_an_array_input(self):
        # With --keep-labels, the rows of a .npy after a text input were written after the text's
        # label pointers, freed with its reader: bytes of freed memory, exit status 0.
        f = self.path("x.npy")
        np.save(f, np.zeros((2, 3)))
        text = self.write("l.csv", "name,a,b,c\nrex,1,2,3\nfido,3,2,1\n")
        self.assertEqual(output(["-c", "2-", "--keep-labels", text, f]),
                         "rex 0.0900306 0.244728 0.665241\nfido 0.665241 0.244728 0.0900306\n"
                         "0.333333 0.333333 0.333333\n0.333333 0.333333 0.333333\n")
        self.assertEqual(output(["-c", "2-", "--keep-labels", text, f, "--argmax"]),
                         "argmax\nrex 2\nfido 0\n0\n0\n")
        lines = output(["-c", "2-", "--keep-labels", text, f, "--sample", "9", "--counts"]).splitlines()
        self.assertEqual([line.split()[0] for line in lines[:2]], ["rex", "fido"])
        self.assertEqual([sum(int(v) for v in line.split()) for line in lines[2:]], [9, 9])

    def test_statistics_in_the_order_asked_with_a_header(self):
        x = [1.0, 2.0, 4.0]
        entropy = float(-sum(p * mpmath.log(p) for p in map(mpmath.mpf, reference_softmax(x))))
        lse = float(mpmath.log(mpmath.fsum(mpmath.exp(v) for v in x)))
        got = output(["--argmax", "--entropy", "--logsumexp", "-p", "12"], "1 2 4\n").split()
        self.assertEqual(got[0], "2")
        self.assertAlmostEqual(float(got[1]), entropy, places=10)
        self.assertAlmostEqual(float(got[2]), lse, places=10)
        got = output(["--logsumexp", "--argmax", "-p", "12"], "a,b,c\n1,2,4\n").splitlines()
        self.assertEqual(got[0], "logsumexp argmax")
        self.assertEqual(got[1].split()[1], "2")

    def test_npy_on_standard_input_is_found_by_its_magic(self):
        x = np.random.default_rng(2).standard_normal((3, 4))
        np.save(self.path("x.npy"), x)
        with open(self.path("x.npy"), "rb") as f:
            data = f.read()
        result = subprocess.run([CLI, "-p", "17"], input=data, capture_output=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        np.testing.assert_allclose(np.array(rows_of(result.stdout.decode())), numpy_softmax(x), rtol=4e-15)
        result = subprocess.run([CLI, "-", "-o", self.path("y.npy")], input=data, capture_output=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        np.testing.assert_allclose(np.load(self.path("y.npy")), numpy_softmax(x), rtol=4e-15)

    def test_a_terminal_on_standard_input_is_told_what_happens(self):
        import pty
        leader, follower = pty.openpty()
        process = subprocess.Popen([CLI], stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(follower)
        os.write(leader, b"1 1\n\x04")
        out, err = process.communicate(timeout=10)
        os.close(leader)
        self.assertEqual(out, b"0.5 0.5\n")
        self.assertIn(b"reading rows of numbers from the terminal", err)
        self.assertEqual(run([], "1 1\n")[2], "")


TIME = "/usr/bin/time"


@unittest.skipUnless(os.access(TIME, os.X_OK), "needs GNU time (Debian package time) for the peak memory")
@unittest.skipIf(os.environ.get("SOFTMAX_CLI_SANITIZED") == "1", "the sanitizers' memory is not the command's")
class Memory(Case):
    """Peak resident memory of the command (GNU time -v) on inputs streamed through a pipe: bounded by
    the line-length limit, never by the input. The documented bound: 5 x --max-line-length + 8 MiB."""

    def peak(self, producer, args, expected_status):
        script = f"{producer} | {TIME} -v {CLI} {' '.join(args)} > /dev/null"
        result = subprocess.run(["sh", "-c", script], capture_output=True, timeout=300)
        err = result.stderr.decode()
        status = int(re.search(r"Exit status: (\d+)", err).group(1))
        self.assertEqual(status, expected_status, err)
        kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
        print(f"\n{producer} | softmax {' '.join(args)}: peak RSS {kib} KiB", file=sys.stderr)
        return kib, err

    def test_dev_zero_stops_at_its_first_byte(self):
        kib, err = self.peak("head -c 300M /dev/zero", [], EX_DATAERR)
        self.assertIn("standard input:1:1: expected a number, found a NUL byte", err)
        self.assertLess(kib, 8 * 1024)

    def test_a_single_line_past_the_limit_is_an_error_naming_line_and_column(self):
        kib, err = self.peak("yes 0 | head -c 300M | tr '\\n' ' '", [], EX_DATAERR)
        self.assertIn("standard input:1:16777217: the line is longer than the limit of 16777216 bytes; "
                      "--max-line-length sets it", err)
        self.assertLess(kib, (5 * 16 + 8) * 1024)
        kib, err = self.peak("yes 0 | head -c 300M | tr '\\n' ' '", ["--max-line-length", "1M"], EX_DATAERR)
        self.assertIn("standard input:1:1048577: the line is longer than the limit of 1048576 bytes", err)
        self.assertLess(kib, (5 + 8) * 1024)
        # on a later line too, and a line exactly at the limit is read
        self.assertFails(["--max-line-length", "5"], EX_DATAERR, "standard input:2:6: the line is longer",
                         "1 2 3\n1 2 3 \n")
        self.assertEqual(output(["--max-line-length", "5"], "1 2 3\n"), "0.0900306 0.244728 0.665241\n")
        for bad in ("0", "-1", "1T", "x"):
            self.assertFails(["--max-line-length", bad], EX_USAGE, "--max-line-length: expected a positive size", "")

    def test_a_line_at_the_limit_stays_within_the_bound(self):
        producer = "/usr/bin/python3 -c \"import sys; sys.stdout.write('0 ' * ((2 << 20) - 1) + '0\\n')\""
        kib, _ = self.peak(producer, ["--max-line-length", "4M"], 0)
        self.assertLess(kib, (5 * 4 + 8) * 1024)

    def test_ten_million_short_lines(self):
        kib, _ = self.peak("yes '1 2 3' | head -n 10000000", [], 0)
        self.assertLess(kib, 16 * 1024)


class OutputFile(Case):
    """-o FILE writes into FILE as cp and sort -o would (its target through symbolic links, its mode,
    owner and hard links kept, refused when the user may not write it), still atomically: on error
    the file is untouched."""

    def result_of(self, args, stdin="0 0\n"):
        return run(args, stdin)

    def test_a_symbolic_link_gets_the_result_in_its_target(self):
        target = self.write("target.txt", "old\n")
        os.symlink("target.txt", self.path("link.txt"))
        run(["-o", self.path("link.txt")], "0 0\n")
        self.assertTrue(os.path.islink(self.path("link.txt")))
        with open(target) as f:
            self.assertEqual(f.read(), "0.5 0.5\n")
        os.mkdir(self.path("sub"))
        os.symlink("../new.txt", self.path("sub/dangling.txt"))  # a dangling link creates its target
        run(["-o", self.path("sub/dangling.txt")], "0 0\n")
        self.assertTrue(os.path.islink(self.path("sub/dangling.txt")))
        with open(self.path("new.txt")) as f:
            self.assertEqual(f.read(), "0.5 0.5\n")
        self.assertEqual(sorted(os.listdir(self.tmp)), ["link.txt", "new.txt", "sub", "target.txt"])
        os.symlink("loop", self.path("loop"))
        self.assertFails(["-o", self.path("loop")], EX_CANTCREAT, "Too many levels of symbolic links", "0 0\n")

    def test_mode_and_hard_links_are_kept(self):
        f = self.write("y.txt", "old\n")
        for mode in (0o600, 0o640, 0o604):
            os.chmod(f, mode)
            run(["-o", f], "0 0\n")
            self.assertEqual(os.stat(f).st_mode & 0o7777, mode)
        os.link(f, self.path("other.txt"))
        inode = os.stat(f).st_ino
        run(["-o", f], "1 1 1 1\n")
        self.assertEqual(os.stat(f).st_ino, inode)
        with open(self.path("other.txt")) as handle:
            self.assertEqual(handle.read(), "0.25 0.25 0.25 0.25\n")
        # on error the file is untouched, even through the in-place path
        self.assertFails(["-o", f], EX_DATAERR, "expected a number", "1 x\n")
        with open(self.path("other.txt")) as handle:
            self.assertEqual(handle.read(), "0.25 0.25 0.25 0.25\n")
        self.assertEqual(sorted(os.listdir(self.tmp)), ["other.txt", "y.txt"])

    def small_file_system(self, kib):
        """A directory on a tmpfs of `kib` KiB, unmounted at the end of the test."""
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a tmpfs")
        # not under self.tmp: tearDown, which removes it, runs before the cleanups
        mount_point = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, mount_point)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", mount_point],
                                capture_output=True, text=True)
        if result.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {result.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", mount_point], check=True)
        return mount_point

    def test_a_hard_linked_file_on_a_full_disk_is_untouched(self):
        # The result is copied into a file with other links (to keep them): on
        # a disk with room for the result but not for the copy, the command
        # fails before touching the file, not half-way through it.
        disk = self.small_file_system(64)
        f, other = os.path.join(disk, "h1"), os.path.join(disk, "h2")
        old = "".join(f"{i}\n" for i in range(1, 2001))  # 8893 bytes
        with open(f, "w") as handle:
            handle.write(old)
        os.link(f, other)
        free = os.statvfs(disk).f_bfree
        row = "1 2 3 4 5\n"  # 48 bytes of output: 800 rows fit once (with the old file), not twice
        err = self.assertFails(["-o", f], 74, f"{f}: cannot write the output file: No space left on device", row * 800)
        for name in (f, other):
            with open(name) as handle:
                self.assertTrue(handle.read() == old, f"{name} changed; {err}")
        self.assertEqual(sorted(os.listdir(disk)), ["h1", "h2"])
        self.assertEqual(os.statvfs(disk).f_bfree, free)  # no space left reserved
        # a result that fits is still written into the file itself
        inode = os.stat(f).st_ino
        run(["-o", f], row * 100)
        self.assertEqual(os.stat(f).st_ino, inode)
        with open(other) as handle:
            self.assertEqual(handle.read(), "0.0116562 0.0316849 0.0861285 0.234122 0.636409\n" * 100)
        self.assertEqual(sorted(os.listdir(disk)), ["h1", "h2"])

    def as_nobody(self, args, stdin):
        """The command run as user and group 65534, from a copy it can reach:
        the checkout (a clone in a mode-0700 mktemp directory, say) may be
        closed to that user. The libraries it loads from outside the
        system's directories are copied beside it."""
        if not hasattr(self, "nobody_dir"):
            shared = tempfile.TemporaryDirectory()
            self.addCleanup(shared.cleanup)
            os.chmod(shared.name, 0o755)
            listing = subprocess.run(["ldd", CLI], capture_output=True, text=True).stdout
            for name, path in re.findall(r"^\s*(\S+) => (/\S+)", listing, re.M):
                if not path.startswith(("/lib", "/usr/lib")):
                    shutil.copy(path, os.path.join(shared.name, name))
            shutil.copy(CLI, os.path.join(shared.name, "softmax"))
            for entry in os.listdir(shared.name):
                os.chmod(os.path.join(shared.name, entry), 0o755)
            self.nobody_dir = shared.name
        return subprocess.run([os.path.join(self.nobody_dir, "softmax")] + args, input=stdin, capture_output=True,
                              env=dict(os.environ, LD_LIBRARY_PATH=self.nobody_dir),
                              preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))

    @unittest.skipUnless(os.geteuid() == 0, "needs root to own files as another user")
    def test_owner_is_kept_and_unwritable_files_are_refused(self):
        f = self.write("y.txt", "old\n")
        os.chown(f, 65534, 65534)
        run(["-o", f], "0 0\n")
        self.assertEqual((os.stat(f).st_uid, os.stat(f).st_gid), (65534, 65534))
        # as an ordinary user: a read-only file is refused, as cp refuses it
        os.chmod(self.tmp, 0o777)
        os.chmod(f, 0o444)
        result = self.as_nobody(["-o", f], b"1 1\n")
        self.assertEqual(result.returncode, EX_CANTCREAT, result.stderr)
        self.assertIn(b"cannot write the output file: Permission denied", result.stderr)
        with open(f) as handle:
            self.assertEqual(handle.read(), "0.5 0.5\n")
        # a file of another user that this user may write (group-writable): written, owner kept
        os.chown(f, 0, 65534)
        os.chmod(f, 0o664)
        result = self.as_nobody(["-o", f], b"1 1 1 1\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual((os.stat(f).st_uid, os.stat(f).st_mode & 0o777), (0, 0o664))
        with open(f) as handle:
            self.assertEqual(handle.read(), "0.25 0.25 0.25 0.25\n")
        # a file this user may write in a directory where it may not create one: written in place
        os.mkdir(self.path("locked"))
        g = self.write("locked/y.txt", "old\n")
        os.chown(g, 65534, 65534)
        os.chmod(self.path("locked"), 0o755)
        result = self.as_nobody(["-o", g], b"0 0\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(g) as handle:
            self.assertEqual(handle.read(), "0.5 0.5\n")
        self.assertEqual(os.listdir(self.path("locked")), ["y.txt"])
        # and an error still leaves it untouched
        result = self.as_nobody(["-o", g], b"1 x\n")
        self.assertEqual(result.returncode, EX_DATAERR, result.stderr)
        with open(g) as handle:
            self.assertEqual(handle.read(), "0.5 0.5\n")

    def test_long_names_and_the_empty_name(self):
        for length in (245, 250, 255):
            name = self.path("y" * (length - 4) + ".npy")
            run(["-o", name], "0 0\n")
            np.testing.assert_array_equal(np.load(name), [[0.5, 0.5]])
        self.assertFails(["-o", ""], EX_USAGE, "-o: the output file name is empty", "0 0\n")

    def test_npy_output_from_text_to_a_pipe_is_refused_up_front(self):
        fifo = self.path("out.npy")
        os.mkfifo(fifo)
        reader = subprocess.Popen(["cat", fifo], stdout=subprocess.PIPE)
        result = subprocess.run([CLI, "-o", fifo], input=b"1 2\n", capture_output=True, timeout=30)
        data = reader.communicate(timeout=30)[0]
        self.assertEqual(result.returncode, EX_CANTCREAT)
        self.assertIn(b"a .npy output from text must be a regular file", result.stderr)
        self.assertEqual(data, b"")
        # from a .npy input the header is known first: a pipe is fine
        np.save(self.path("x.npy"), np.array([[0.0, 0.0]]))
        reader = subprocess.Popen(["cat", fifo], stdout=subprocess.PIPE)
        result = subprocess.run([CLI, self.path("x.npy"), "-o", fifo], capture_output=True, timeout=30)
        data = reader.communicate(timeout=30)[0]
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(self.path("copy.npy"), "wb") as f:
            f.write(data)
        np.testing.assert_array_equal(np.load(self.path("copy.npy")), [[0.5, 0.5]])

    def test_dev_stdout_is_the_descriptor_written_in_place(self):
        """-o /dev/stdout (/dev/fd/N, or a link to it) writes the descriptor the command was given,
        at its offset, as a shell's `> /dev/stdout` does: it was followed to the file behind it
        and a new file renamed over that one, losing what the shell had written or appended
        before (`(echo header; softmax -o /dev/stdout) > f`, `>> log`)."""
        out = self.path("out.txt")
        link = self.path("link.txt")
        os.symlink("/dev/stdout", link)
        for name in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", link):
            with self.subTest(name=name):
                with open(out, "w") as f:
                    f.write("header\n")
                with open(out, "a") as f:
                    subprocess.run([CLI, "-o", name], input=b"0 0\n", stdout=f, check=True, timeout=30)
                with open(out) as f:
                    self.assertEqual(f.read(), "header\n0.5 0.5\n")
        with open(out, "w") as f:
            f.write("log\n")
        subprocess.run(["sh", "-c", f"{CLI} -o /dev/stdout >> {out}"], input=b"0 0\n", check=True, timeout=30)
        subprocess.run(["sh", "-c", f"{CLI} -o /dev/fd/3 3>> {out}"], input=b"1 1\n", check=True, timeout=30)
        with open(out) as f:
            self.assertEqual(f.read(), "log\n0.5 0.5\n0.5 0.5\n")
        # text to .npy: the header goes where the output starts, not at the start of the file
        npy_link = self.path("link.npy")
        os.symlink("/dev/stdout", npy_link)
        with open(out, "wb") as f:
            f.write(b"abc")
            f.flush()
            result = subprocess.run([CLI, "-o", npy_link], input=b"0 0\n1 1\n", stdout=f, stderr=subprocess.PIPE,
                                    timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(out, "rb") as f:
            data = f.read()
        self.assertEqual(data[:3], b"abc")
        with open(self.path("copy.npy"), "wb") as f:
            f.write(data[3:])
        np.testing.assert_array_equal(np.load(self.path("copy.npy")), [[0.5, 0.5], [0.5, 0.5]])
        # appended to, the header could not go back to the start: refused before anything is written
        with open(out, "ab") as f:
            result = subprocess.run([CLI, "-o", npy_link], input=b"0 0\n", stdout=f, stderr=subprocess.PIPE,
                                    timeout=30)
        self.assertEqual(result.returncode, EX_CANTCREAT)
        self.assertIn(b"a .npy output from text cannot be appended to a file", result.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data)
        # a descriptor that is not open, or open for reading only
        self.assertFails(["-o", "/dev/fd/9"], EX_CANTCREAT, "/dev/fd/9: cannot write the output: Bad file descriptor",
                         "0 0\n")
        with open(out, "w") as f:
            f.write("0 0\n")
        with open(out) as f:
            result = subprocess.run([CLI, "-o", "/dev/stdin"], stdin=f, capture_output=True, timeout=30)
        self.assertEqual(result.returncode, EX_CANTCREAT)
        self.assertIn(b"/dev/stdin: cannot write the output: the file descriptor is open for reading only",
                      result.stderr)
        with open(out) as f:
            self.assertEqual(f.read(), "0 0\n")

    def test_an_output_that_is_an_input_pipe_is_refused(self):
        """-o /dev/stdin with a pipe on standard input (or a FIFO given as input and output):
        every result written was read again as input, a loop without end at full speed."""
        for name in ("/dev/stdin", "/dev/fd/0"):
            with self.subTest(name=name):
                status, out, err = run(["-o", name], "1 2\n", check=False)
                self.assertEqual(status, EX_USAGE, err)
                self.assertIn(f"softmax: -o {name}: it is the pipe that standard input is read from", err)
        fifo = self.path("f")
        os.mkfifo(fifo)
        self.assertFails([fifo, "-o", fifo], EX_USAGE, f"-o {fifo}: it is the pipe that {fifo} is read from")
        self.assertFails(["--mask", fifo, "-o", fifo], EX_USAGE, f"-o {fifo}: it is the pipe that {fifo} is read from",
                         "1 2\n")


def cells(text):
    """Terminal cells of a string, from Python's own Unicode tables (independent of the command)."""
    import unicodedata
    width = 0
    for c in text:
        if unicodedata.combining(c) or c in "\u200b\u200c\u200d\ufe0f":
            continue
        width += 2 if unicodedata.east_asian_width(c) in "WF" else 1
    return width


class PlotText(Case):
    """--plot with labels of any script and terminals of any width."""

    def test_wide_and_combining_labels_align(self):
        for header in ("猫,犬,鳥", "🐱,🐶,🐦", "a,猫,e\u0301", "x,🇫🇷,y"):
            with self.subTest(header=header):
                text = run(["--plot"], header + "\n1,2,3\n", env={"COLUMNS": "50"})[1]
                lines = text.splitlines()[1:]
                # every bar starts in the same terminal column: the label, padded to the widest, then one space
                starts = {cells(re.split("[\u2588-\u258f]", line, maxsplit=1)[0]) for line in lines}
                self.assertEqual(len(starts), 1, text)
                for line in lines:
                    self.assertLessEqual(cells(line), 50)

    def test_long_labels_are_cut_at_a_character_and_marked(self):
        long_label = "αβγδεζηθικλμνξοπρστυφχψω" * 3
        text = run(["--plot"], f"{long_label},b\n1,2\n", env={"COLUMNS": "40"})[1]
        lines = text.splitlines()
        self.assertIn("\u2026", lines[1])
        label = lines[1].split(" ")[0]
        self.assertTrue(long_label.startswith(label[:-1]))
        self.assertLessEqual(cells(label), 40 // 3)
        for line in lines:
            self.assertLessEqual(cells(line), 40)
        # cut through a 3-byte character would not decode: run() decodes strictly
        wide = "猫" * 40
        text = run(["--plot"], f"{wide},b\n1,2\n", env={"COLUMNS": "31"})[1]
        for line in text.splitlines():
            self.assertLessEqual(cells(line), 31)

    def test_narrow_terminals_truncate_instead_of_wrapping(self):
        for columns in (5, 12, 20, 25):
            for args in (["--plot"], ["--plot", "--sample", "100", "--seed", "1"], ["--plot", "-t", "1,2"]):
                with self.subTest(columns=columns, args=args):
                    text = run(args, "name,b,c\n1,2,3\n", env={"COLUMNS": str(columns)})[1]
                    for line in text.splitlines():
                        self.assertLessEqual(cells(line), columns, line)

    def test_control_characters_in_labels_are_not_sent_to_the_terminal(self):
        text = run(["--plot"], "a\x1b[2J,b\x07\n1,2\n", env={"COLUMNS": "40"})[1]
        self.assertNotIn("\x1b", text)
        self.assertNotIn("\x07", text)
        self.assertIn("a?[2J", text)


class ChangingInput(Case):
    """A .npy input is memory-mapped: another process truncating it while it is read would make the
    next read of the mapping a SIGBUS (the command killed, a partial output, no word of why), and one
    rewriting it in place would silently mix old and new values. Both are errors naming the file,
    exit status 66, with no -o output (nor temporary file) left behind.

    Determinism: the command's standard output is a pipe of 4 KiB that the test does not read, so
    the command blocks writing the first of several chunks, the file mapped, until the test has
    changed the file; a sparse file of 48 MiB of zeros makes three chunks."""

    ROWS = 3 << 20  # float32 rows of 4: 3 chunks of 4M elements

    def big_npy(self):
        from numpy.lib import format as npy_format
        import io
        header = io.BytesIO()
        npy_format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                   "shape": (self.ROWS, 4)})
        path = self.path("big.npy")
        with open(path, "wb") as f:
            f.write(header.getvalue())
            f.truncate(len(header.getvalue()) + self.ROWS * 16)
        # an old modification time: any write now changes it, however coarse the clock
        os.utime(path, (946684800, 946684800))
        return path, len(header.getvalue())

    def run_blocked(self, args, change):
        """Runs the command with stdout a full pipe; calls change() once it is blocked writing, then
        drains the pipe. Returns (status, stderr, bytes of stdout)."""
        import array
        import fcntl
        import termios
        read_end, write_end = os.pipe()
        fcntl.fcntl(read_end, 1031, 4096)  # F_SETPIPE_SZ: one page
        process = subprocess.Popen([CLI] + args, stdout=write_end, stderr=subprocess.PIPE)
        os.close(write_end)
        try:
            deadline = time.monotonic() + 60
            while True:
                pending = array.array("i", [0])
                fcntl.ioctl(read_end, termios.FIONREAD, pending)
                if pending[0] >= 4096 or time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            self.assertGreaterEqual(pending[0], 4096, "the command never filled the pipe")
            change()
            received = 0
            while True:
                data = os.read(read_end, 1 << 16)
                if not data:
                    break
                received += len(data)
            process.wait(timeout=120)
            return process.returncode, process.stderr.read().decode(), received
        finally:
            os.close(read_end)
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stderr.close()

    def test_truncated_while_mapped_is_an_error_not_sigbus(self):
        for args in ([], ["--argmax"], ["-j", "2"], ["-t", "1,2"]):
            with self.subTest(args=args):
                path, header = self.big_npy()
                status, err, _ = self.run_blocked([path, "-p", "1"] + args, lambda: os.truncate(path, 4096))
                self.assertEqual(status, EX_NOINPUT, err)
                # one message, from the first faulting thread only
                self.assertEqual(err, f"softmax: {path}: read failed: the file was truncated while it was read "
                                      "(another process changed it)\n")

    def test_rewritten_in_place_while_mapped_is_an_error(self):
        path, header = self.big_npy()

        def rewrite():
            with open(path, "r+b") as f:
                f.seek(header + self.ROWS * 16 - 16)
                f.write(np.array([1, 2, 3, 4], dtype="<f4").tobytes())

        status, err, _ = self.run_blocked([path, "-p", "1"], rewrite)
        self.assertEqual(status, EX_NOINPUT, err)
        self.assertIn(f"softmax: {path}: read failed: the file was modified while it was read", err)

    def test_no_output_file_is_left_when_the_input_is_truncated(self):
        """With -o nothing blocks: the command is stopped once /proc shows the file mapped, the file
        truncated, the command continued. Whether the next read faults or the change is found at the
        end, the run fails and -o leaves no file."""
        if not os.path.isdir("/proc/self"):
            self.skipTest("needs /proc to see the mapping")
        for out_name in ("out.txt", "out.npy"):
            with self.subTest(output=out_name):
                path, header = self.big_npy()
                out = self.path(out_name)
                process = subprocess.Popen([CLI, path, "-t", "1,2,3", "-o", out], stderr=subprocess.PIPE)
                try:
                    deadline = time.monotonic() + 60
                    mapped = False
                    while not mapped and process.poll() is None and time.monotonic() < deadline:
                        try:
                            with open(f"/proc/{process.pid}/maps") as maps:
                                mapped = path in maps.read()
                        except OSError:
                            break
                    if mapped:
                        os.kill(process.pid, signal.SIGSTOP)
                        os.truncate(path, 4096)
                        os.kill(process.pid, signal.SIGCONT)
                    process.wait(timeout=120)
                finally:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
                err = process.stderr.read().decode()
                process.stderr.close()
                self.assertTrue(mapped, "the command ended before the test saw the file mapped")
                self.assertEqual(process.returncode, EX_NOINPUT, err)
                self.assertIn(f"softmax: {path}: read failed: the file was", err)
                self.assertEqual(sorted(os.listdir(self.tmp)), ["big.npy"])
