"""Shared test settings: hypothesis profiles (ci is the default; 'long' for soaks)."""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _damo_command():
    """How to run the installed damo (the package's entry point, or the script on PATH)."""
    if importlib.util.find_spec("damo") is not None and importlib.util.find_spec("damo.damo") is not None:
        return [sys.executable, "-c", "import sys; from damo.damo import main; sys.argv[0] = 'damo'; main()"]
    exe = shutil.which("damo")
    return [exe] if exe else None


@pytest.fixture(scope="module")
def damo():
    """Run the real damo on files: only its offline subcommands, never start/tune/stop/record."""
    cmd = _damo_command()
    if cmd is None:
        pytest.fail("damo is not installed: these interop tests need it (pip install 'damo==3.4.3'); "
                    "deselect them with -m 'not damo'")
    if shutil.which("file") is None:
        pytest.fail("damo reads record files through the 'file' command, which is not installed")

    def run(*args, cwd):
        args = [str(a) for a in args]
        assert args[0] in ("report", "validate", "convert_record_format", "version", "args")
        env = dict(os.environ, LC_ALL="C", LANG="C")
        p = subprocess.run(cmd + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"damo {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
        return p.stdout
    return run
