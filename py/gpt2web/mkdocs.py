"""MkDocs plugin: ``plugins: [gpt2web]`` (see gpt2web.host.mkdocs_plugin)."""

from .host.extras import require

require("mkdocs")
from .host.mkdocs_plugin import Gpt2WebPlugin  # noqa: E402, F401
