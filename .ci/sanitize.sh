#!/usr/bin/env bash
# CI job 2: the C core built with AddressSanitizer and UndefinedBehaviorSanitizer, and the
# default test suite (fuzz tests included) run against that build. Any sanitizer report fails
# the job.
#
# The build happens in place in a temporary copy of the checkout, so the installed package
# (job 1) and the checkout itself are left alone. The interpreter is not instrumented, so
# gcc's ASan runtime is preloaded. Settings:
#   detect_leaks=0               CPython keeps memory until exit by design
#   allocator_may_return_null=1  an impossible allocation returns NULL, as with glibc, so acma's
#                                MemoryError / ACMA_ENOMEM paths run instead of an ASan abort
#   halt_on_error, abort_on_error  the first report (ASan or UBSan) ends the run with SIGABRT,
#                                which pytest cannot catch: its exit status is then 134
#   -fsanitize=float-cast-overflow  not part of -fsanitize=undefined in gcc; added here (CFLAGS)
# pytest runs with --capture=sys so a report written to fd 2 reaches the log, not a capture
# file that dies with the process.
#
# Usage: .ci/sanitize.sh [extra pytest arguments]    (PYTHON selects the interpreter)
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
START=$SECONDS

LIBASAN="$(gcc -print-file-name=libasan.so)"
if [ ! -e "$LIBASAN" ]; then
    echo "sanitize: gcc has no ASan runtime ($LIBASAN); install gcc's libasan (Debian: libgcc-12-dev)" >&2
    exit 2
fi
LIBASAN="$(readlink -f "$LIBASAN")"
# C++ extensions (matplotlib's ft2font) throw exceptions; ASan's __cxa_throw interceptor needs
# libstdc++ loaded before it resolves, or it aborts with "CHECK failed ... real___cxa_throw".
LIBSTDCXX="$(readlink -f "$(gcc -print-file-name=libstdc++.so)")"
PRELOAD="$LIBASAN${LIBSTDCXX:+ $LIBSTDCXX}"

SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/acma-sanitize.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
WORK="$SCRATCH/$(basename "$SRC")"
mkdir "$WORK"
# Tests read shared/data beside the repository (damo's golden output): keep it beside the copy.
if [ -d "$SRC/../shared" ]; then
    ln -s "$(cd "$SRC/../shared" && pwd)" "$SCRATCH/shared"
fi

# The checkout without VCS data, caches or build products of the normal build.
tar -C "$SRC" -cf - \
    --exclude=./.git --exclude=./.hypothesis --exclude=./.benchmarks --exclude=./.pytest_cache \
    --exclude=./build --exclude='./.venv*' --exclude=./results --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude='*.so' --exclude='*.o' --exclude=./acma/_acma_core.c \
    . | tar -C "$WORK" -xf -

cd "$WORK"
echo "sanitize: building the C core with -fsanitize=address,undefined,float-cast-overflow in $WORK"
CFLAGS="${CFLAGS:+$CFLAGS }-fsanitize=float-cast-overflow" ACMA_SANITIZE=1 "$PY" build_ffi.py

export PYTHONPATH="$WORK${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"

# The suite must import this build, instrumented, not an installed acma.
LD_PRELOAD="$PRELOAD" "$PY" - "$WORK" <<'EOF'
import sys
from pathlib import Path

import acma._core  # noqa: F401  (the checked wrappers load the extension)
import acma._acma_core as ext

so = Path(ext.__file__).resolve()
if not so.is_relative_to(Path(sys.argv[1]).resolve()):
    sys.exit(f"sanitize: imported {so}, not the sanitizer build in {sys.argv[1]}")
data = so.read_bytes()
for symbol in (b"__asan_report", b"__ubsan_handle", b"__ubsan_handle_float_cast_overflow"):
    if symbol not in data:
        sys.exit(f"sanitize: {so} is not instrumented ({symbol.decode()} missing)")
print(f"sanitize: testing {so}")
EOF

status=0
LD_PRELOAD="$PRELOAD" "$PY" -m pytest tests -q -p no:cacheprovider --capture=sys "$@" || status=$?
if [ "$status" -ne 0 ]; then
    if [ "$status" -ge 128 ]; then
        echo "sanitize: FAILED: the interpreter died with signal $((status - 128)) (a sanitizer report above)" >&2
    else
        echo "sanitize: FAILED: pytest exit status $status" >&2
    fi
    exit "$status"
fi
echo "sanitize: passed, no sanitizer report ($((SECONDS - START)) s)"
