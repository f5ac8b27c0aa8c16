#!/usr/bin/env bash
# CI job 2: the C core built with AddressSanitizer and UndefinedBehaviorSanitizer, and the
# default test suite run against that build. Any sanitizer report fails the job.
#
# The build happens in place in a temporary copy of the checkout, so the installed package
# (job 1) and the checkout itself are left alone. The interpreter is not instrumented, so
# gcc's ASan runtime is preloaded; leak detection is off because CPython keeps memory until
# exit by design. UBSan halts on the first report; ASan always does.
#
# Usage: .ci/sanitize.sh [extra pytest arguments]    (PYTHON selects the interpreter)
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"

LIBASAN="$(gcc -print-file-name=libasan.so)"
if [ ! -e "$LIBASAN" ]; then
    echo "sanitize: gcc has no ASan runtime ($LIBASAN); install gcc's libasan (Debian: libgcc-12-dev)" >&2
    exit 2
fi
LIBASAN="$(readlink -f "$LIBASAN")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/acma-sanitize.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# The checkout without VCS data, caches or build products of the normal build.
tar -C "$SRC" -cf - \
    --exclude=./.git --exclude=./.hypothesis --exclude=./.benchmarks --exclude=./.pytest_cache \
    --exclude=./build --exclude='./.venv*' --exclude=./results --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude='*.so' --exclude='*.o' --exclude=./acma/_acma_core.c \
    . | tar -C "$WORK" -xf -

cd "$WORK"
echo "sanitize: building the C core with -fsanitize=address,undefined in $WORK"
ACMA_SANITIZE=1 "$PY" build_ffi.py

export PYTHONPATH="$WORK${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
# abort_on_error: a report ends the process with SIGABRT, which pytest cannot swallow.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"

# The suite must import this build, instrumented, not an installed acma.
LD_PRELOAD="$LIBASAN" "$PY" - "$WORK" <<'EOF'
import sys
from pathlib import Path

import acma._core  # noqa: F401  (the checked wrappers load the extension)
import acma._acma_core as ext

so = Path(ext.__file__).resolve()
if not so.is_relative_to(Path(sys.argv[1]).resolve()):
    sys.exit(f"sanitize: imported {so}, not the sanitizer build in {sys.argv[1]}")
if b"__asan_report" not in so.read_bytes() or b"__ubsan_handle" not in so.read_bytes():
    sys.exit(f"sanitize: {so} is not instrumented with ASan and UBSan")
print(f"sanitize: testing {so}")
EOF

# A report aborts the interpreter: pytest's exit status is then non-zero (134), so the job fails.
LD_PRELOAD="$LIBASAN" "$PY" -m pytest tests -q -p no:cacheprovider "$@"
echo "sanitize: no sanitizer report"
