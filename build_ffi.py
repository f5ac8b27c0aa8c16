"""Builds acma's C core as the cffi extension acma._acma_core (API mode).

The cdef is the part of each public header in csrc/ (acma.h first, then the others in name
order; internal.h is private) between CDEF BEGIN and CDEF END, so the headers are the single
statement of the C API. Every csrc/*.c file is compiled. ACMA_SANITIZE=1 builds with AddressSanitizer and
UndefinedBehaviorSanitizer for the hardening CI job.
"""

import os
import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
SOURCES = sorted(p.name for p in CSRC.glob("*.c"))
PRIVATE_HEADERS = {"internal.h"}


def _public_headers() -> list[str]:
    """acma.h, then every other public header of csrc/ in name order."""
    others = sorted(p.name for p in CSRC.glob("*.h") if p.name not in PRIVATE_HEADERS | {"acma.h"})
    return ["acma.h"] + others


def _cdef() -> str:
    parts = []
    for name in _public_headers():
        text = (CSRC / name).read_text()
        m = re.search(r"/\* CDEF BEGIN \*/(.*)/\* CDEF END \*/", text, re.S)
        if not m:
            raise RuntimeError(f"csrc/{name} has no CDEF BEGIN/END section")
        parts.append(re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S))
    return "\n".join(parts)


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
    "\n".join(f'#include "{h}"' for h in _public_headers()),
    sources=[str(Path("csrc") / s) for s in SOURCES],
    include_dirs=[str(CSRC)],
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
    libraries=["m"],
)

if __name__ == "__main__":
    os.chdir(HERE)
    ffibuilder.compile(verbose=False)
