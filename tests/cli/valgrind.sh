#!/usr/bin/env bash
# Runs the command under valgrind (memcheck: invalid accesses, uninitialised
# values, leaks) on one input of each kind. The library runs its portable
# path (SOFTMAX_ISA=scalar): valgrind does not know every AVX-512 instruction.
#
#   tests/cli/valgrind.sh path/to/softmax
set -euo pipefail
softmax="$1"
export SOFTMAX_ISA=scalar
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
check() {
    local expected_status="$1" input="$2"
    shift 2
    local status=0
    printf '%b' "$input" | valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        "$softmax" "$@" >/dev/null 2>"$work/log" || status=$?
    if [[ "$status" != "$expected_status" ]]; then
        cat "$work/log" >&2
        echo "valgrind softmax $*: exit status $status, expected $expected_status" >&2
        exit 1
    fi
}
check 0 'a,b,c\n1,2,3\n4,5,6\n' --plot -t 1,2
check 0 '1 2 3\n4 5 6\n' -o "$work/y.npy" -t 0.5,2 --log
check 0 '1 2\n3 4\n' --axis 0 -f %.3f
check 0 '' "$work/y.npy" --axis 1 -o "$work/z.npy"
check 0 '' "$work/y.npy" --plot
check 65 '1 2 x\n' -o "$work/bad.txt"
check 65 '1 2\n3\n' --axis 0
check 64 '' --bogus
check 0 'name;x;y\nAda Lovelace;1;2\nbob;3;4\n' -d ';' -c 2- --keep-labels
check 0 '\xe7\x8c\xab,\xe7\x8a\xac\n1,2\n' --plot
check 0 '1 2 3\n' -f %.600f
check 65 '1,5 2,5\n'
check 65 '1 2\n\0\0\0' --max-line-length 2
check 0 '1 2\n' -o "$work/y.txt"
ln -s y.txt "$work/link.txt"
ln "$work/y.txt" "$work/hard.txt"
check 0 '3 4\n' -o "$work/link.txt"
# a .npy array on standard input (found by its magic string)
valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    "$softmax" - -o "$work/w.npy" <"$work/z.npy" 2>"$work/log" || { cat "$work/log" >&2; exit 1; }
[[ "$(head -c 6 "$work/w.npy" | od -An -c)" == "$(printf '\223NUMPY' | od -An -c)" ]] || {
    echo "valgrind softmax - <z.npy: no .npy output" >&2
    exit 1
}
echo "0 -inf" >"$work/mask.txt"
status=0
printf '1 2\n' | "$softmax" --mask "$work/mask.txt" >/dev/null 2>&1 || status=$?
if [[ "$status" == 0 ]]; then check 0 '1 2\n3 4\n' --mask "$work/mask.txt"; fi
status=0
printf '1 2\n' | "$softmax" --argmax >/dev/null 2>&1 || status=$?
if [[ "$status" == 0 ]]; then
    check 0 '1 2 3\n' --sample 100 --seed 1 --counts --plot
    check 0 '1 2 3\n3 2 1\n' --entropy --logsumexp --argmax
    check 0 '2 1 3 5 4\n' --sample 100000000 --counts --top-p 0.9
fi
echo "valgrind: no memory errors or leaks"
