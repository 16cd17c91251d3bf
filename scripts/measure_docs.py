#!/usr/bin/env python3
"""What a docs reader downloads: a real Sphinx (or MkDocs) site with two widgets, built and
served at /docs/ under the strict CSP (the builders and server of tests/test_docs.py), in
headless Chromium: files and bytes before any click, then after clicking the next-token
widget, and the time until its live view is in.

Usage:  .venv/bin/python scripts/measure_docs.py [sphinx|mkdocs]
"""
import sys, functools, http.server, threading, json, shutil, os
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests")); sys.path.insert(0, str(REPO / "py"))
from pathlib import Path
from urllib.parse import urlsplit
import test_docs as T
from playwright.sync_api import sync_playwright
import tempfile
root = Path(tempfile.mkdtemp(prefix="gpt2web-docs-"))
www = root / "www"; www.mkdir()
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(T.Handler, directory=str(www)))
threading.Thread(target=httpd.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{httpd.server_address[1]}/docs/"
built = T.BUILDERS[sys.argv[1] if len(sys.argv) > 1 else "sphinx"](root, base); (www / "docs").symlink_to(built)
size = lambda u: (www / urlsplit(u).path.lstrip("/")).stat().st_size if (www / urlsplit(u).path.lstrip("/")).is_file() else 0
with sync_playwright() as p:
    b = p.chromium.launch(executable_path=T.CHROMIUM, args=T.CHROMIUM_ARGS)
    page = b.new_page(viewport={"width": 1100, "height": 1600})
    reqs = []
    page.on("requestfinished", lambda r: reqs.append(r.url))
    page.goto(base + "index.html"); page.wait_for_timeout(1500)
    before = list(reqs)
    ours = [u for u in before if "gpt2web" in u]
    print(f"before a click: {len(before)} files, {sum(map(size, before))/1e3:.0f} kB (widget files: {len(ours)}, {sum(map(size, ours))/1e3:.0f} kB)")
    html = built / "index.html"
    print(f"index.html {html.stat().st_size/1e3:.1f} kB")
    import time; t0 = time.time()
    page.locator('gpt2-widget[mode="next"] > .gpt2-static button', has_text='Show next token').click()
    page.wait_for_function(T.is_live('gpt2-widget[mode="next"]'), timeout=180000)
    t = time.time() - t0
    page.wait_for_timeout(500)
    after = [u for u in reqs if u not in before]
    print(f"after the click: {len(after)} more files, {sum(map(size, set(after)))/1e6:.1f} MB, live in {t:.1f} s")
    b.close()
httpd.shutdown()
print("site", sum(f.stat().st_size for f in built.rglob('*') if f.is_file())/1e6, "MB")
shutil.rmtree(root, ignore_errors=True)
