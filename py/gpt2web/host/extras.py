"""Which extra of the package brings a missing optional dependency, in one line."""

from __future__ import annotations

# Top-level module -> the extra that installs it (pyproject.toml).
EXTRAS = {
    "fastapi": "host", "starlette": "host", "uvicorn": "host", "safetensors": "host",
    "huggingface_hub": "host", "tqdm": "host",
    "sphinx": "docs", "docutils": "docs", "mkdocs": "docs", "markdown": "docs",
    "anywidget": "notebook", "traitlets": "notebook",
    "playwright": "test", "torch": "test", "transformers": "test", "tiktoken": "test",
}


def missing_dependency(e: ModuleNotFoundError) -> str:
    """E.g. "fastapi is not installed: pip install 'gpt2web[host]'"."""
    top = (e.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return f"{e.name or e} is not installed"
    return f"{top} is not installed: pip install 'gpt2web[{extra}]'"


class MissingExtra(ImportError):
    """Raised by the integrations (gpt2web.sphinx, ...) with the one line above."""


def require(module: str):
    """Import ``module`` or raise MissingExtra saying which extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise MissingExtra(missing_dependency(e)) from None
