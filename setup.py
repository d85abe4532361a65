"""Builds the C++ beam-search core ``asr._beam`` (everything else is in pyproject.toml)."""

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup

setup(
    ext_modules=[Pybind11Extension("asr._beam", ["asr/csrc/beam_search.cpp"], cxx_std=17, extra_compile_args=["-O3"])]
)
