"""What ``acma xval`` needs on the host, fetched when missing: QEMU, busybox, cpio, a DAMON kernel.

The Debian packages ``qemu-system-x86``, ``busybox-static``, ``cpio`` and ``xz-utils`` are
installed with apt-get (about 50 MB of downloads, 10-60 s). The guest kernel is Debian's
``linux-image-6.12-cloud-amd64`` (6.12 with DAMON vaddr/paddr/sysfs and free page reporting):
its .deb (34 MB) is fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into a
user cache directory (default ``~/.cache/acma/xval``, or ``$ACMA_XVAL_CACHE``); it is never
installed on this machine. The modules the guest loads (virtio_balloon; zram and its dependencies) are decompressed
next to it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ConfigError

__all__ = ["APT_PACKAGES", "KERNEL_META", "GuestKit", "cache_dir", "find_kit", "missing_tools", "setup"]

KERNEL_META = "linux-image-6.12-cloud-amd64"
# tool -> the Debian package providing it
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static", "cpio": "cpio", "xz": "xz-utils",
         "gcc": "gcc"}
APT_PACKAGES = ("qemu-system-x86", "busybox-static", "cpio", "xz-utils")
# the balloon driver, and zram with what it needs (swap in guest RAM: a disk's I/O completion
# times depend on the host and would break the runs' determinism)
MODULES = ("drivers/virtio/virtio_balloon.ko", "mm/zsmalloc.ko", "lib/lz4/lz4_compress.ko",
           "lib/lz4/lz4hc_compress.ko", "drivers/block/zram/zram.ko")
NEEDED_CONFIG = ("CONFIG_DAMON_VADDR=y", "CONFIG_DAMON_PADDR=y", "CONFIG_DAMON_SYSFS=y", "CONFIG_PAGE_REPORTING=y",
                 "CONFIG_EVENT_TRACING=y", "CONFIG_SWAP=y")


def cache_dir() -> Path:
    """Where the kernel is unpacked: ``$ACMA_XVAL_CACHE`` or ``~/.cache/acma/xval``."""
    return Path(os.environ.get("ACMA_XVAL_CACHE") or Path.home() / ".cache" / "acma" / "xval")


@dataclass(frozen=True)
class GuestKit:
    """Everything a guest run needs from the host: the kernel, its modules and the tools."""

    kernel: Path
    release: str
    modules: dict  # module name -> decompressed .ko path
    qemu: str
    busybox: str
    cpio: str


def _which_busybox() -> str | None:
    """A static busybox (the initramfs has no libc); Debian's busybox-static puts it in /bin."""
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(p):
            return p
    return shutil.which("busybox")


def missing_tools() -> list[str]:
    """Host tools that are not on PATH."""
    out = []
    for tool in TOOLS:
        found = _which_busybox() if tool == "busybox" else shutil.which(tool)
        if not found:
            out.append(tool)
    return out


def _kernel_dir(cache: Path) -> Path:
    return cache / "kernel"


def find_kit(cache: Path | None = None) -> GuestKit | None:
    """The unpacked kernel and the tools, or None when anything is missing (run :func:`setup`)."""
    cache = cache or cache_dir()
    if missing_tools():
        return None
    kdir = _kernel_dir(cache)
    kernels = sorted(glob.glob(str(kdir / "boot" / "vmlinuz-*")))
    if not kernels:
        return None
    release = os.path.basename(kernels[-1])[len("vmlinuz-"):]
    mods = {}
    for rel in MODULES:
        name = os.path.basename(rel)[:-3]
        p = cache / "modules" / release / (name + ".ko")
        if not p.exists():
            return None
        mods[name] = p
    return GuestKit(Path(kernels[-1]), release, mods, shutil.which("qemu-system-x86_64"), _which_busybox(),
                    shutil.which("cpio"))


def _run(cmd: list[str], say: Callable[[str], None], cwd: Path | None = None) -> str:
    say("  $ " + " ".join(cmd))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(30):
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        if p.returncode == 0:
            return p.stdout
        locked = "lock" in p.stderr.lower() and ("dpkg" in p.stderr or "apt" in p.stderr)
        if not locked:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr.strip()[-2000:]}")
        say("    dpkg/apt is locked by another process; retrying in 5 s")
        time.sleep(5)
    raise RuntimeError(f"{' '.join(cmd)}: dpkg stayed locked for 150 s")


def _kernel_package(say) -> str:
    """The versioned package the meta package depends on (linux-image-6.12.N+debM-cloud-amd64)."""
    out = _run(["apt-cache", "depends", KERNEL_META], say)
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends: linux-image-6"):
            return line.split()[1]
    raise RuntimeError(f"apt-cache finds no kernel package behind {KERNEL_META}; is bookworm-security in "
                       "/etc/apt/sources.list? (it carries linux-6.12)")


def _check_config(kdir: Path, release: str) -> None:
    config = (kdir / "boot" / f"config-{release}").read_text()
    lines = set(config.splitlines())
    lacking = [c for c in NEEDED_CONFIG if c not in lines]
    if lacking:
        raise RuntimeError(f"kernel {release} lacks {', '.join(lacking)}")


def setup(cache: Path | None = None, say: Callable[[str], None] = print, apt: bool = True) -> GuestKit:
    """Install what is missing (apt packages, then the kernel into the cache) and return the kit.

    Prints each step and its duration through ``say``. With ``apt=False`` missing packages are
    an error instead of being installed.
    """
    cache = cache or cache_dir()
    t0 = time.monotonic()
    lacking = missing_tools()
    if lacking:
        pkgs = sorted({TOOLS[t] for t in lacking})
        if not apt:
            raise ConfigError("tools", lacking, f"installed (apt-get install {' '.join(pkgs)})")
        if os.geteuid() != 0:
            raise RuntimeError(f"missing {', '.join(lacking)}: run as root or `sudo apt-get install {' '.join(pkgs)}`")
        say(f"installing {' '.join(pkgs)} with apt-get (about 50 MB; typically 10-60 s)")
        _run(["apt-get", "update", "-qq"], say)
        _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs], say)
        say(f"  done in {time.monotonic() - t0:.0f} s")
    kdir = _kernel_dir(cache)
    if not glob.glob(str(kdir / "boot" / "vmlinuz-*")):
        t1 = time.monotonic()
        say(f"fetching the guest kernel ({KERNEL_META}, a 34 MB .deb; typically 5-30 s) into {cache}")
        pkg = _kernel_package(say)
        dl = cache / "download"
        dl.mkdir(parents=True, exist_ok=True)
        for old in dl.glob("*.deb"):
            old.unlink()
        _run(["apt-get", "download", "-qq", pkg], say, cwd=dl)
        debs = sorted(dl.glob("*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download {pkg} wrote no .deb into {dl}")
        tmp = cache / "kernel.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        say(f"unpacking {debs[-1].name} (dpkg-deb -x; not installed on this machine)")
        _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], say)
        shutil.rmtree(kdir, ignore_errors=True)
        tmp.rename(kdir)
        debs[-1].unlink()
        say(f"  done in {time.monotonic() - t1:.0f} s")
    release = os.path.basename(sorted(glob.glob(str(kdir / "boot" / "vmlinuz-*")))[-1])[len("vmlinuz-"):]
    _check_config(kdir, release)
    for rel in MODULES:
        name = os.path.basename(rel)[:-3]
        out = cache / "modules" / release / (name + ".ko")
        if not out.exists():
            src = kdir / "lib" / "modules" / release / "kernel" / (rel + ".xz")
            out.parent.mkdir(parents=True, exist_ok=True)
            say(f"decompressing {name}.ko")
            data = subprocess.run(["xz", "-dc", str(src)], capture_output=True, check=True).stdout
            tmp = out.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.rename(out)
    kit = find_kit(cache)
    if kit is None:
        raise RuntimeError(f"setup finished but the kit in {cache} is incomplete; missing tools: {missing_tools()}")
    say(f"xval setup complete in {time.monotonic() - t0:.0f} s: kernel {release}, {kit.qemu}")
    return kit
