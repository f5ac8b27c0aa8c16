"""qemu-user and acma's page plugin: find them, install qemu-user, build the plugin on first use.

The plugin's C source ships with acma (``acma/tracing/plugin/acma_pages.c``); it is compiled
with gcc into a per-user cache directory the first time a trace is recorded, never at import
time and never into site-packages. The cached library is named after a hash of its source and
compiler flags, so an upgraded acma builds a fresh one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources

from ..errors import AcmaError

QEMU = "qemu-x86_64"
APT_PACKAGES = ("qemu-user",)
SETUP_COMMAND = "apt-get install -y --no-install-recommends " + " ".join(APT_PACKAGES)
PLUGIN_SOURCE = "acma_pages.c"
PLUGIN_CFLAGS = ("-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall")
SETUP_TIME = "about 10 s with a warm apt cache, up to a minute after `apt-get update` (a 10 MB download)"


class ToolMissing(AcmaError, RuntimeError):
    """A program acma needs to record traces (qemu-user, gcc, valgrind) is not installed."""


def plugin_source() -> bytes:
    """The plugin's C source, as shipped in the package."""
    return resources.files("acma.tracing").joinpath("plugin", PLUGIN_SOURCE).read_bytes()


def plugin_digest() -> str:
    """SHA-256 of the plugin source and compiler flags: names the cached build."""
    h = hashlib.sha256(plugin_source())
    h.update(" ".join(PLUGIN_CFLAGS).encode())
    return h.hexdigest()


def cache_dir() -> str:
    """Where built plugins live: $ACMA_CACHE_DIR, else $XDG_CACHE_HOME/acma, else ~/.cache/acma."""
    explicit = os.environ.get("ACMA_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "acma")


def find_qemu() -> str | None:
    """The qemu-user x86_64 emulator on PATH, or None."""
    return shutil.which(QEMU)


def require_qemu() -> str:
    """The emulator's path, or ToolMissing saying how to install it."""
    exe = find_qemu()
    if exe is None:
        raise ToolMissing(f"{QEMU} (Debian package qemu-user) is not installed; run `acma trace setup` "
                          f"or, as root, `{SETUP_COMMAND}`")
    return exe


def qemu_version(exe: str) -> str:
    """The first line of ``qemu-x86_64 --version``."""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"


def build_plugin(force: bool = False) -> str:
    """Compile the plugin into the cache directory if needed; return the shared library's path."""
    directory = os.path.join(cache_dir(), "plugins")
    so = os.path.join(directory, f"acma_pages-{plugin_digest()[:16]}.so")
    if os.path.isfile(so) and not force:
        return so
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ToolMissing("gcc is needed to build acma's QEMU plugin (Debian package gcc)")
    os.makedirs(directory, exist_ok=True)
    src = os.path.join(directory, PLUGIN_SOURCE)
    with open(src, "wb") as f:
        f.write(plugin_source())
    tmp = f"{so}.{os.getpid()}.tmp"
    done = subprocess.run([gcc, *PLUGIN_CFLAGS, "-o", tmp, src], capture_output=True, text=True, timeout=300,
                          check=False)
    if done.returncode != 0:
        raise AcmaError(f"building the QEMU plugin failed ({' '.join([gcc, *PLUGIN_CFLAGS])}):\n{done.stderr}")
    os.replace(tmp, so)
    return so


@dataclass(frozen=True)
class SetupPlan:
    """What ``acma trace setup`` will do (or did): a command, or nothing."""

    needed: bool
    command: list[str]
    as_root: bool
    message: str


def setup_plan() -> SetupPlan:
    """Whether qemu-user is missing and how it would be installed here."""
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if find_qemu():
        return SetupPlan(False, [], as_root, f"{QEMU} is installed ({find_qemu()}); nothing to do")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES]
    if as_root:
        return SetupPlan(True, cmd, True, f"installing {' '.join(APT_PACKAGES)} with apt-get ({SETUP_TIME})")
    return SetupPlan(True, cmd, False, f"{QEMU} is missing; as root, run: sudo {SETUP_COMMAND} ({SETUP_TIME})")


def run_setup(plan: SetupPlan | None = None, update: bool = True) -> SetupPlan:
    """Install qemu-user with apt-get when missing and running as root; build the plugin.

    Not root: nothing is installed (the plan's message holds the exact command). Raises
    AcmaError when apt-get fails.
    """
    plan = plan or setup_plan()
    if plan.needed and plan.as_root:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if update:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=600)
        done = subprocess.run(plan.command, env=env, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            raise AcmaError(f"{' '.join(plan.command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    if find_qemu():
        build_plugin()
    return plan
