"""Build of the optional C speedup; the package metadata is in pyproject.toml.

The extension is optional: without a C compiler jetmq installs anyway and routes
with the same loop in pure Python (jetmq/member/engine/routing.py), only slower.
"""
from setuptools import Extension, setup

setup(ext_modules=[
    Extension("jetmq.member.engine._routing", ["jetmq/member/engine/_routing.c"], optional=True,
              extra_compile_args=["-O2"]),
])
