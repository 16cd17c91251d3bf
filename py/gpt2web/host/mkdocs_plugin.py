"""MkDocs plugin (``plugins: [gpt2web]``): widgets from a fenced block, rendered at build time.

In a page::

    ```gpt2-widget
    mode: next
    prompt: And God said
    candidates: 5
    ```

One ``attribute: value`` a line, with the widget's attributes (``model``, ``prompt``, ``mode``,
``max-tokens``, ``temperature``, ``top-k``, ``top-p``, ``seed``, ``candidates``, ``settings``,
``loading``, ``theme``, ``label``). Each block becomes the widget with its first view rendered
(gpt2web.host.render). ``widget.js`` and the static stylesheet are added to every page (small
modules only; the runtime and the model load when a reader clicks a widget), so Material's
instant navigation, which swaps pages without reloading scripts, finds the element defined and
each new widget starts from its connectedCallback. After the build the widget, the runtime and
the models the pages use are copied once into ``site/gpt2web/``.

Options (mkdocs.yml)::

    plugins:
      - gpt2web:
          base_url: https://host/gpt2web/   # load the widget from a hosted copy instead
          weights: path/to/models           # default: the package's weights/
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.config import config_options as c
from mkdocs.config.base import Config
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, get_plugin_logger

from .render import ATTRIBUTES, STYLESHEET, RenderError, render_widget

FOLDER = "gpt2web"  # under site_dir
BLOCK = re.compile(r"^(?P<indent>[ \t]*)```+[ \t]*gpt2-widget[ \t]*\n(?P<body>.*?)^(?P=indent)```+[ \t]*$",
                   re.M | re.S)
log = get_plugin_logger(__name__)


class Gpt2WebConfig(Config):
    base_url = c.Type(str, default="")
    weights = c.Optional(c.Dir(exists=True))


def parse_block(body: str) -> dict:
    """``attribute: value`` lines -> attributes (blank lines and ``#`` comments skipped)."""
    attrs = {}
    for n, line in enumerate(body.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or key not in ATTRIBUTES:
            raise RenderError(f"line {n}: expected 'attribute: value' with one of {', '.join(ATTRIBUTES)}, "
                              f"got {line.strip()!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]  # quoted, e.g. a prompt ending in a space
        attrs[key] = value
    return attrs


class Gpt2WebPlugin(BasePlugin[Gpt2WebConfig]):
    def on_config(self, config):
        self.models: set[str] = set()
        self.widgets: dict[str, str] = {}
        base = self.config.base_url
        if base and not base.endswith("/"):
            base += "/"
        src = (base or f"{FOLDER}/") + "widget.js"
        if not any(str(s) == src for s in config.extra_javascript):
            script = c.ExtraScriptValue(src)
            script.type = "module"
            config.extra_javascript.append(script)
        css = f"{FOLDER}/{STYLESHEET}"
        if css not in config.extra_css:
            config.extra_css.append(css)
        return config

    def on_page_markdown(self, markdown, page, config, files):
        def widget(m):
            try:
                attrs = parse_block(m.group("body"))
                n = len(self.widgets)
                uid = f"gpt2-{n}"
                html = render_widget(attrs, weights=self.config.weights, uid=uid)
            except RenderError as e:
                raise PluginError(f"{page.file.src_path}: gpt2-widget: {e}") from None
            self.models.add(attrs.get("model") or "demo")
            token = f"gpt2web-widget-{n}-placeholder"
            self.widgets[token] = html
            return f"{m.group('indent')}{token}"

        return BLOCK.sub(widget, markdown)

    def on_page_content(self, html, page, config, files):
        for token, markup in self.widgets.items():
            if token in html:
                html = html.replace(f"<p>{token}</p>", markup).replace(token, markup)
        return html

    def on_post_build(self, config):
        from .site import publish, write_stylesheet

        dest = Path(config.site_dir) / FOLDER
        if self.config.base_url or not self.models:
            write_stylesheet(dest)
            return
        try:
            publish(dest, self.models, weights=self.config.weights, log=log.info)
        except (OSError, RenderError) as e:
            raise PluginError(f"gpt2web: {e}") from None
