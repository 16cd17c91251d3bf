"""The security headers every gpt2web page is served with (`gpt2web serve`, an export's serve.py).

The Content-Security-Policy allows only this server's own files: no inline scripts or styles,
no eval. WebAssembly needs 'wasm-unsafe-eval' (Pyodide and the kernels compile wasm; no
JavaScript is evaluated). `blob:` workers are how the widget starts its worker when embedded
from another origin; `data:` images are the pages' empty icon.
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    "worker-src 'self' blob:",
    "connect-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
