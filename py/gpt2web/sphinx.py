"""Sphinx extension: ``extensions = ["gpt2web.sphinx"]`` (see gpt2web.host.sphinx_ext)."""

from .host.extras import require

require("sphinx")
from .host.sphinx_ext import setup  # noqa: E402, F401
