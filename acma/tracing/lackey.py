"""A cross-check of the plugin against Valgrind's lackey tool on one program.

Lackey prints every instruction fetch (``I  addr,size``) and data access (`` L``/`` S``/`` M``);
the pages it names are compared with the pages in an acma trace of the same program. The two
emulators load a program differently, so only a statically linked, non-PIE program can be
compared page by page: its image (the ELF's loaded segments) sits at the same addresses under
both, while the stack, the brk heap and any mmap are placed by each emulator in its own way and
are compared by their page counts only. docs/real-workloads.md §5 lists the expected
differences; :func:`compare_pages` measures them.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

from ..errors import FormatError
from .qemu import ToolMissing

_ACCESS_TAGS = (b"I ", b" L", b" S", b" M")
_PT_LOAD = 1


@dataclass(frozen=True)
class LackeyRun:
    """The pages lackey saw: ``pages`` sorted, distinct; ``instructions`` counted from I lines."""

    pages: np.ndarray
    instructions: int


def parse_lackey(text: bytes, source: str = "<lackey>") -> LackeyRun:
    """Pages and instruction count from lackey's ``--trace-mem=yes`` output (valgrind's own
    ``==pid==`` lines are skipped). Data accesses count the page of their first byte, as the
    QEMU plugin does; instruction fetches count every page the instruction spans."""
    pages: set[int] = set()
    instructions = 0
    for n, line in enumerate(text.split(b"\n"), 1):
        tag = line[:2]
        if tag not in _ACCESS_TAGS:
            continue
        addr_s, _, size_s = line[2:].strip().partition(b",")
        try:
            addr, size = int(addr_s, 16), int(size_s)
        except ValueError:
            raise FormatError(source, f"line {n}", f"not an access line: {line[:60]!r}") from None
        pages.add(addr >> 12)
        if tag == b"I ":
            instructions += 1
            pages.add((addr + max(size, 1) - 1) >> 12)
    return LackeyRun(np.array(sorted(pages), dtype=np.uint64), instructions)


def run_lackey(program: str, args: list[str], env: dict, cwd: str | None = None, timeout_s: float = 600) -> LackeyRun:
    """Run ``program`` under ``valgrind --tool=lackey --trace-mem=yes`` and parse its output."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise ToolMissing("valgrind is not installed (Debian package valgrind)")
    with tempfile.TemporaryDirectory(prefix="acma-lackey-") as tmp:
        log = os.path.join(tmp, "lackey.txt")
        with open(log, "wb") as f:
            subprocess.run([valgrind, "--tool=lackey", "--trace-mem=yes", f"--log-fd={f.fileno()}", program, *args],
                           env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, pass_fds=(f.fileno(),), timeout=timeout_s, check=True)
        with open(log, "rb") as f:
            return parse_lackey(f.read(), log)


def elf_image_pages(path: str) -> tuple[int, int]:
    """[first, end) page numbers spanned by the loadable segments of a 64-bit little-endian ELF."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            raise FormatError(path, "byte 0", "not a 64-bit little-endian ELF file")
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    lo, hi = None, None
    for i in range(phnum):
        p_type, _, _, vaddr, _, _, memsz = struct.unpack_from("<IIQQQQQ", table, i * phentsize)
        if p_type == _PT_LOAD and memsz:
            lo = vaddr if lo is None else min(lo, vaddr)
            hi = vaddr + memsz if hi is None else max(hi, vaddr + memsz)
    if lo is None:
        raise FormatError(path, "program headers", "no loadable segment")
    return lo >> 12, -(-hi // 4096)


@dataclass(frozen=True)
class PageComparison:
    """The plugin's pages against lackey's: the image page by page, the rest by counts."""

    image_plugin: int
    image_lackey: int
    image_common: int
    other_plugin: int        # stack, brk heap, mmap: placed differently by each emulator
    other_lackey: int
    instructions_plugin: int
    instructions_lackey: int

    @property
    def image_jaccard(self) -> float:
        union = self.image_plugin + self.image_lackey - self.image_common
        return self.image_common / union if union else 1.0

    @property
    def total_ratio(self) -> float:
        """Plugin pages / lackey pages, over everything."""
        lk = self.image_lackey + self.other_lackey
        return (self.image_plugin + self.other_plugin) / lk if lk else float("nan")


def compare_pages(plugin_pages: np.ndarray, plugin_instructions: int, lackey: LackeyRun,
                  image: tuple[int, int]) -> PageComparison:
    """Split both page sets at the program image ``image`` = [first, end) pages and compare."""
    a = np.unique(np.asarray(plugin_pages, dtype=np.uint64))
    b = lackey.pages
    in_a = (a >= image[0]) & (a < image[1])
    in_b = (b >= image[0]) & (b < image[1])
    common = len(np.intersect1d(a[in_a], b[in_b], assume_unique=True))
    return PageComparison(int(in_a.sum()), int(in_b.sum()), common, int((~in_a).sum()), int((~in_b).sum()),
                          plugin_instructions, lackey.instructions)
