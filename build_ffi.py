"""Builds acma's C core as the cffi extension acma._acma_core (API mode).

The cdef is the part of csrc/acma.h between CDEF BEGIN and CDEF END, so the header is the
single statement of the C API. ACMA_SANITIZE=1 builds with AddressSanitizer and
UndefinedBehaviorSanitizer for the hardening CI job.
"""

import os
import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
SOURCES = ["list.c", "buddy.c", "reclaim.c", "access.c", "vma.c", "mem.c", "check.c", "snapshot.c", "damon.c"]


def _cdef() -> str:
    text = (CSRC / "acma.h").read_text()
    m = re.search(r"/\* CDEF BEGIN \*/(.*)/\* CDEF END \*/", text, re.S)
    if not m:
        raise RuntimeError("csrc/acma.h has no CDEF BEGIN/END section")
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    return body


def _flags() -> tuple[list[str], list[str]]:
    cflags = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    ldflags: list[str] = []
    if os.environ.get("ACMA_SANITIZE") == "1":
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
        cflags = ["-O1", "-g", "-std=c11"] + san
        ldflags = san
    return cflags, ldflags


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
_cflags, _ldflags = _flags()
ffibuilder.set_source(
    "acma._acma_core",
    '#include "acma.h"',
    sources=[str(Path("csrc") / s) for s in SOURCES],
    include_dirs=[str(CSRC)],
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
    libraries=["m"],
)

if __name__ == "__main__":
    os.chdir(HERE)
    ffibuilder.compile(verbose=False)
