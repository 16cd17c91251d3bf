"""The notebook widget: ``from gpt2web.notebook import Widget`` (see gpt2web.host.notebook_widget)."""

from .host.extras import require

require("anywidget")
from .host.notebook_widget import Widget  # noqa: E402, F401
