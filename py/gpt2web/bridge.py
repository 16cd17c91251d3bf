"""Glue between the web worker's messages and the engine (runs in Pyodide).

It keeps the loaded models and the live generations by name / request id, and turns every
result and every exception into JSON text, so the worker never manages Python proxies or
parses tracebacks: an engine error arrives as {kind, message} with the engine's own message,
which is what the page shows. Plain Python, so the CPython tests exercise it too.
"""

import json

from .engine import PromptError, ShardAssembler
from .explain import ExplainError, explain_request
from .sampling import SamplingError, SamplingParams
from .tokenizer import Tokenizer, TokenizerError
from .weights import WeightsError

_tokenizers = {}   # sha256 -> Tokenizer: one vocabulary, shared by every model
_assemblers = {}   # model -> ShardAssembler, while its shards arrive
_engines = {}      # model -> Engine, shared by every request
_generations = {}  # request id -> Generation (each with its own KV cache)


def _bytes(data):
    return data.to_bytes() if hasattr(data, "to_bytes") else bytes(data)


def _buffer(data):
    # to_memoryview() is the one copy from JavaScript memory into wasm memory; the
    # tensors are NumPy views on it from here on.
    return data.to_memoryview() if hasattr(data, "to_memoryview") else data


def _kind(e):
    if isinstance(e, PromptError):
        return "prompt"
    if isinstance(e, (SamplingError, ExplainError)):
        return "params"
    if isinstance(e, (WeightsError, TokenizerError)):
        return "shard"
    if isinstance(e, MemoryError):
        return "memory"
    return "runtime"


def _json(fn):
    """Run fn; answer {"ok": result} or {"error": {kind, message}} as JSON text."""
    def call(*args):
        try:
            return json.dumps({"ok": fn(*args)})
        except Exception as e:  # every failure must reach the page as a readable message
            message = str(e) or type(e).__name__
            if _kind(e) == "runtime":
                message = f"{type(e).__name__}: {message}"
            return json.dumps({"error": {"kind": _kind(e), "message": message}})
    return call


@_json
def has_tokenizer(sha256):
    return sha256 in _tokenizers


@_json
def load_tokenizer(sha256, data, source):
    if sha256 not in _tokenizers:
        _tokenizers[sha256] = Tokenizer.from_bytes(_bytes(data), expected_sha256=sha256, source=source)
    return None


@_json
def begin_model(model, manifest_json, tokenizer_sha256):
    _assemblers[model] = ShardAssembler(manifest_json, _tokenizers[tokenizer_sha256])
    return None


@_json
def add_shard(model, index, data, sha256=None):
    _assemblers[model].add(index, _buffer(data), sha256)
    return None


@_json
def finish_model(model):
    engine = _assemblers.pop(model).engine()
    _engines[model] = engine
    card = {k: engine.manifest[k] for k in ("description", "examples") if k in engine.manifest}
    return {"config": engine.model.config.to_dict(), "name": engine.name, "backend": engine.model.backend, **card}


def drop_model(model):
    _assemblers.pop(model, None)


def _seed(seed):
    # Seeds up to 2**63 - 1 do not fit a JavaScript number: the page may send digits.
    if isinstance(seed, str) and seed.strip().isdigit():
        return int(seed)
    return seed


@_json
def generate_start(req, model, prompt, temperature, top_k, top_p, seed, max_tokens, candidates, use_cache=True):
    params = SamplingParams(temperature, top_k, top_p, _seed(seed))
    gen = _engines[model].generate(prompt, params, max_tokens=max_tokens, n_candidates=candidates)
    gen.use_cache = use_cache is not False  # False: the loop view's "without the cache"
    _generations[req] = gen
    # A JavaScript number holds integers exactly only up to 2**53: larger seeds go as digits.
    seed = gen.seed if gen.seed < 2**53 else str(gen.seed)
    return {"seed": seed, "prompt_tokens": len(gen.prompt_ids)}


@_json
def generate_step(req, forced_id):
    return _generations[req].step(forced_id)


@_json
def peek(req):
    """Candidates for the next token, before one is chosen (Step mode lets the user pick)."""
    return _generations[req].peek()


@_json
def generate_truncate(req, n):
    """Cut generation `req` back to its first `n` tokens (rewrite from there)."""
    _generations[req].truncate(n)
    return None


@_json
def generate_info(req):
    """What a finished generation wrote, without freeing it (it may be rewound)."""
    gen = _generations[req]
    return {"text": gen.text, "ids": list(gen.ids), "prefill_ms": gen.prefill_ms}


@_json
def generate_end(req):
    gen = _generations.pop(req, None)
    if gen is None:
        return None
    return {"text": gen.text, "ids": list(gen.ids), "prefill_ms": gen.prefill_ms}


@_json
def next_tokens(model, prompt, top):
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 1000:
        raise SamplingError(f"top must be a whole number from 1 to 1000, got {top!r}")
    return _engines[model].next_tokens(prompt, top)


@_json
def explain(model, request_json):
    """One view of one step (explain.explain_request); the request's fields as JSON text."""
    return explain_request(_engines[model], json.loads(request_json))


@_json
def score(model, text):
    """Per-token probability and rank of `text`, and its perplexity (the surprise view)."""
    return _engines[model].score(text)
