"""Sphinx extension (``extensions = ["gpt2web.sphinx"]``): the ``gpt2-widget`` directive.

    .. gpt2-widget::
       :mode: next
       :prompt: And God said

Options are the widget's attributes (``:model:``, ``:prompt:``, ``:mode:``, ``:max-tokens:``,
``:temperature:``, ``:top-k:``, ``:top-p:``, ``:seed:``, ``:candidates:``, ``:settings:``,
``:loading:``, ``:theme:``, ``:label:``); the directive's content, if any, is the prompt.
Each widget's first view is rendered at build time (``gpt2web.host.render``), so its bars are
in the HTML. After an HTML build, the widget, the runtime and the models the pages use are
copied once into ``_static/gpt2web/`` and the site is complete and static.

conf.py options:
  ``gpt2web_base_url``  load the widget from a hosted copy instead (a URL ending in ``/``
                        where ``widget.js`` is served); nothing but the stylesheet is copied;
  ``gpt2web_weights``   the folder holding the models, relative to conf.py (default: the
                        package's ``weights/``).
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive, directives

from .. import __version__
from .render import ATTRIBUTES, STYLESHEET, RenderError, render_widget

STATIC = "gpt2web"  # under _static/


class Gpt2WidgetDirective(Directive):
    has_content = True
    option_spec = {name: directives.unchanged for name in ATTRIBUTES}

    def run(self):
        env = self.state.document.settings.env
        attrs = dict(self.options)
        if self.content and "prompt" not in attrs:
            attrs["prompt"] = "\n".join(self.content)
        serial = env.new_serialno("gpt2-widget")
        uid = f"gpt2-{env.docname.replace('/', '-')}-{serial}"
        try:
            markup = render_widget(attrs, weights=_weights(env.app), uid=uid)
        except RenderError as e:
            raise self.error(f"gpt2-widget: {e}") from None
        if not hasattr(env, "gpt2web_pages"):
            env.gpt2web_pages = {}
        env.gpt2web_pages.setdefault(env.docname, set()).add(attrs.get("model") or "demo")
        return [nodes.raw("", markup, format="html")]


def _weights(app):
    """gpt2web_weights, relative to the folder of conf.py."""
    w = app.config.gpt2web_weights
    return Path(app.confdir) / w if w else None


def _purge(app, env, docname):
    getattr(env, "gpt2web_pages", {}).pop(docname, None)


def _merge(app, env, docnames, other):
    env.gpt2web_pages = getattr(env, "gpt2web_pages", {})
    env.gpt2web_pages.update(getattr(other, "gpt2web_pages", {}))


def _base(app) -> str:
    base = app.config.gpt2web_base_url
    if base and not base.endswith("/"):
        base += "/"
    return base


def _page(app, pagename, templatename, context, doctree):
    if pagename not in getattr(app.env, "gpt2web_pages", {}):
        return
    base = _base(app)
    app.add_js_file((base or f"{STATIC}/") + "widget.js", type="module")
    app.add_css_file(f"{STATIC}/{STYLESHEET}")


def _finished(app, exc):
    if exc is not None or app.builder.name not in ("html", "dirhtml", "singlehtml"):
        return  # e.g. epub (format "html" too): no scripts there
    from .site import publish, write_stylesheet

    dest = Path(app.outdir) / "_static" / STATIC
    models = set().union(*getattr(app.env, "gpt2web_pages", {}).values())
    if _base(app):
        write_stylesheet(dest)
        return
    if models:
        try:
            from sphinx.util import logging

            publish(dest, models, weights=_weights(app), log=logging.getLogger(__name__).info)
        except (OSError, RenderError) as e:
            from sphinx.errors import ExtensionError

            raise ExtensionError(f"gpt2web: {e}") from None


def setup(app):
    app.add_config_value("gpt2web_base_url", "", "html", [str])
    app.add_config_value("gpt2web_weights", None, "env")
    app.add_directive("gpt2-widget", Gpt2WidgetDirective)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("html-page-context", _page)
    app.connect("build-finished", _finished)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
