from setuptools import setup

setup(cffi_modules=["build_ffi.py:ffibuilder"])  # cffi_modules cannot live in pyproject.toml
