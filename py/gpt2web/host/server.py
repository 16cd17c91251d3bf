"""The static server: serves the page, worker, runtime, wheels and weights. Nothing else.

All compute happens in the reader's browser; this server only hands out files.

URL layout (``root`` is the project folder holding ``web/`` and ``weights/``):

    /                      -> web/index.html
    /<path>                -> web/<path>   (index.html, worker.js, runtime/..., wheels/...)
    /weights/<path>        -> weights/<path>
    /models.json           -> listing of weights/*/manifest.json (name, dtype, size, n_layer, n_embd)

Rules:
  * only regular files inside the served folders: no directory listings, no dotfiles,
    no ``..``, no absolute paths, no symlinks that lead outside; anything else is 404;
  * MIME types the browser insists on (``.wasm`` application/wasm, ``.mjs``/``.js``
    text/javascript, ...);
  * HTTP Range requests (206 + Content-Range), ETag/Last-Modified with 304 revalidation;
  * ``Cache-Control: public, max-age=31536000, immutable`` for content-addressed names
    (a run of 16+ hex digits, e.g. ``h.0.3fa9c0d1e2b3a4f5.bin``), ``no-cache`` for the rest;
  * ``Access-Control-Allow-Origin: *`` on every response, so the widget can be embedded
    from another origin; with ``isolate=True`` also COOP/COEP/CORP (cross-origin isolation);
  * ``X-Content-Type-Options: nosniff``, a strict Content-Security-Policy and a
    Referrer-Policy on every response (``policy.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import socket
import stat
import sys
from email.utils import parsedate_to_datetime
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .offline import listing
from .policy import SECURITY_HEADERS

log = logging.getLogger("gpt2web.server")

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"

# Explicit types for everything the app ships; the platform's mimetypes table varies
# (and on some systems maps .js to text/plain, which module workers refuse).
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".bin": "application/octet-stream",
    ".npy": "application/octet-stream",
    ".safetensors": "application/octet-stream",
    ".tiktoken": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}

# A file name carrying a content hash: 16+ hex digits between separators.
_CONTENT_ADDRESSED = re.compile(r"(?:^|[._\-])[0-9a-fA-F]{16,}(?:[._\-]|$)")


def media_type_for(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in MIME_TYPES:
        return MIME_TYPES[suffix]
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def cache_control_for(name: str) -> str:
    """Immutable caching only for names that change whenever their content does."""
    return IMMUTABLE if _CONTENT_ADDRESSED.search(name) else NO_CACHE


def safe_file(base: Path, rel: str) -> Path | None:
    """The regular file ``rel`` inside ``base``, or None if it is not one (-> 404).

    ``rel`` is the already-decoded URL path below the mount point.
    """
    if not rel or "\x00" in rel or "\\" in rel:
        return None
    parts = rel.split("/")
    for part in parts:
        # empty: '//' or a trailing '/' (a directory URL); '.'/'..': traversal;
        # dotfiles: never published; ':' : drive letters / streams on Windows.
        if not part or part.startswith(".") or ":" in part:
            return None
    try:
        base_real = base.resolve(strict=True)
        target = base_real.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not target.is_relative_to(base_real):  # e.g. a symlink pointing outside
        return None
    try:
        st = target.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return target


def _etag_matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip() for t in if_none_match.split(",")]
    bare = etag.removeprefix("W/")
    return "*" in tags or any(t.removeprefix("W/") == bare for t in tags)


def _is_not_modified(request: Request, etag: str, last_modified: str) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is not None:  # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
        return _etag_matches(inm, etag)
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


def file_response(request: Request, path: Path) -> Response:
    st = path.stat()
    headers = {"Cache-Control": cache_control_for(path.name)}
    resp = FileResponse(path, headers=headers, media_type=media_type_for(path.name), stat_result=st)
    if _is_not_modified(request, resp.headers["etag"], resp.headers["last-modified"]):
        return Response(status_code=304, headers={
            "ETag": resp.headers["etag"],
            "Last-Modified": resp.headers["last-modified"],
            "Cache-Control": headers["Cache-Control"],
        })
    return resp


def _folder_size(folder: Path) -> int:
    total = 0
    base = folder.resolve()
    for p in folder.rglob("*"):
        try:
            if p.is_file() and p.resolve().is_relative_to(base):
                total += p.stat().st_size
        except OSError:
            pass
    return total


def _model_size(manifest: dict, folder: Path) -> int:
    """Bytes a browser downloads: the shards the manifest lists, else the folder's files."""
    shards = manifest.get("shards")
    if isinstance(shards, list) and shards and all(
            isinstance(s, dict) and isinstance(s.get("bytes"), int) for s in shards):
        return sum(s["bytes"] for s in shards)
    return _folder_size(folder)


def model_card(manifest: dict) -> dict:
    """The manifest's optional `description` and `examples`, when they have the right types."""
    card = {}
    if isinstance(manifest.get("description"), str) and manifest["description"].strip():
        card["description"] = manifest["description"].strip()
    examples = manifest.get("examples")
    if isinstance(examples, list) and examples and all(isinstance(e, str) and e for e in examples):
        card["examples"] = examples
    return card


def list_models(weights: Path) -> list[dict]:
    """Models present in ``weights/``: each subfolder holding a manifest.json."""
    models = []
    if not weights.is_dir():
        return models
    for folder in sorted(p for p in weights.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest_path = safe_file(weights, f"{folder.name}/manifest.json")
        if manifest_path is None:
            continue
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            log.warning("skipping %s: unreadable manifest (%s)", manifest_path, e)
            continue
        config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
        models.append({
            "id": folder.name,
            "name": manifest.get("name", folder.name),
            "dtype": manifest.get("dtype"),
            "size": _model_size(manifest, folder),
            "n_layer": config.get("n_layer"),
            "n_embd": config.get("n_embd"),
            "manifest": f"/weights/{folder.name}/manifest.json",
            **model_card(manifest),
        })
    return models


class HeadersMiddleware:
    """CORS for everyone (and cross-origin isolation on request), on every response."""

    def __init__(self, app: ASGIApp, isolate: bool = False) -> None:
        self.app = app
        self.extra = [
            (b"access-control-allow-origin", b"*"),
            (b"access-control-expose-headers",
             b"Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified"),
        ] + [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        if isolate:
            self.extra += [
                (b"cross-origin-opener-policy", b"same-origin"),
                (b"cross-origin-embedder-policy", b"require-corp"),
                (b"cross-origin-resource-policy", b"cross-origin"),
            ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":  # CORS preflight (e.g. a multi-part Range header)
            headers = self.extra + [
                (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
                (b"access-control-allow-headers", b"Range, If-None-Match, If-Modified-Since, If-Range"),
                (b"access-control-max-age", b"86400"),
                (b"content-length", b"0"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self.extra if k not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(root: Path | str, isolate: bool = False,
               weights_dir: Path | str | None = None, runtime_dir: Path | str | None = None,
               wheels_dir: Path | str | None = None) -> FastAPI:
    """The static app for the project folder ``root`` (which holds web/ and weights/).

    ``weights_dir`` serves another folder at /weights/ instead of ``root/weights``
    (e.g. models that tests build in a temp folder); ``runtime_dir`` and ``wheels_dir`` serve
    /runtime/ and /wheels/ from other folders than ``root/web`` (an installed package keeps the
    Pyodide runtime in the user's cache).
    """
    root = Path(root)
    web = root / "web"
    weights = Path(weights_dir) if weights_dir is not None else root / "weights"
    if not web.is_dir():
        log.warning("%s does not exist: the page will 404", web)

    app = FastAPI(title="gpt2web static server", docs_url=None, redoc_url=None, openapi_url=None)

    def not_found() -> Response:
        return Response("Not Found", status_code=404, media_type="text/plain; charset=utf-8",
                        headers={"Cache-Control": NO_CACHE})

    def serve_from(base: Path, rel: str, request: Request) -> Response:
        path = safe_file(base, rel)
        return not_found() if path is None else file_response(request, path)

    @app.api_route("/", methods=["GET", "HEAD"])
    def index(request: Request) -> Response:
        return serve_from(web, "index.html", request)

    def fresh_json(request: Request, body: bytes) -> Response:
        """A listing computed per request: never cached without asking, 304 when unchanged."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"Cache-Control": NO_CACHE, "ETag": etag}
        inm = request.headers.get("if-none-match")
        if inm is not None and _etag_matches(inm, etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @app.api_route("/models.json", methods=["GET", "HEAD"])
    def models(request: Request) -> Response:
        return fresh_json(request, (json.dumps({"models": list_models(weights)}, indent=2) + "\n").encode("utf-8"))

    @app.api_route("/offline.json", methods=["GET", "HEAD"])
    def offline_listing(request: Request) -> Response:
        """The app's files with their sha256, for the service worker (offline.py, web/sw.js)."""
        body = (json.dumps(listing(web, {"runtime": runtime_dir, "wheels": wheels_dir})) + "\n").encode("utf-8")
        return fresh_json(request, body)

    @app.api_route("/weights/{rel:path}", methods=["GET", "HEAD"])
    def weight_file(rel: str, request: Request) -> Response:
        return serve_from(weights, rel, request)

    for prefix, folder in (("runtime", runtime_dir), ("wheels", wheels_dir)):
        if folder is not None:
            def from_folder(rel: str, request: Request, base: Path = Path(folder)) -> Response:
                return serve_from(base, rel, request)

            app.add_api_route(f"/{prefix}/{{rel:path}}", from_folder, methods=["GET", "HEAD"])

    @app.api_route("/{rel:path}", methods=["GET", "HEAD"])
    def web_file(rel: str, request: Request) -> Response:
        return serve_from(web, rel, request)

    app.add_middleware(HeadersMiddleware, isolate=isolate)
    return app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(root: Path | str, host: str = "127.0.0.1", port: int = 8000, isolate: bool = False,
          log_level: str = "warning", weights_dir: Path | str | None = None,
          runtime_dir: Path | str | None = None, wheels_dir: Path | str | None = None) -> None:
    """Serve ``root`` with uvicorn until interrupted. ``port=0`` picks a free port.

    Prints ``Serving gpt2web at http://HOST:PORT/`` with the port actually bound.
    """
    import uvicorn

    app = create_app(root, isolate=isolate, weights_dir=weights_dir, runtime_dir=runtime_dir,
                     wheels_dir=wheels_dir)
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"Serving gpt2web at http://{shown}:{bound_port}/", flush=True)
    config = uvicorn.Config(app, log_level=log_level, access_log=log_level in ("info", "debug"))
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Serve gpt2web (static files only).")
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[3],
                    help="project folder holding web/ and weights/")
    ap.add_argument("--weights", type=Path, default=None,
                    help="folder served at /weights/ (default ROOT/weights)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    ap.add_argument("--isolate", action="store_true",
                    help="send COOP/COEP/CORP headers (cross-origin isolation)")
    args = ap.parse_args(argv)
    serve(args.root, args.host, args.port, args.isolate, weights_dir=args.weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
