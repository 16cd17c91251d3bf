// The Python half of the worker: a thin module between the message protocol and the
// gpt2web engine. It keeps the loaded models and the live generations by name/request id,
// and turns every result and every exception into JSON, so the worker never has to
// manage Python proxies or parse tracebacks: an engine error arrives as {kind, message}
// with the engine's own message, which is what the page shows.
//
// It is written to the Pyodide file system as gpt2web_bridge.py and imported once.

export const BRIDGE_MODULE = "gpt2web_bridge";

export const BRIDGE_SOURCE = String.raw`
"""Glue between the web worker's messages and the gpt2web engine (runs in Pyodide)."""

import json

from gpt2web.engine import PromptError, ShardAssembler
from gpt2web.sampling import SamplingError, SamplingParams, describe, sampling_distribution
from gpt2web.tokenizer import Tokenizer, TokenizerError
from gpt2web.weights import WeightsError

_tokenizers = {}   # sha256 -> Tokenizer: one vocabulary, shared by every model
_assemblers = {}   # model -> ShardAssembler, while its shards arrive
_engines = {}      # model -> Engine, shared by every request
_generations = {}  # request id -> Generation (each with its own KV cache)


def _kind(e):
    if isinstance(e, PromptError):
        return "prompt"
    if isinstance(e, SamplingError):
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
        _tokenizers[sha256] = Tokenizer.from_bytes(data.to_bytes(), expected_sha256=sha256, source=source)
    return None


@_json
def begin_model(model, manifest_json, tokenizer_sha256):
    _assemblers[model] = ShardAssembler(manifest_json, _tokenizers[tokenizer_sha256])
    return None


@_json
def add_shard(model, index, data):
    # to_memoryview() is the one copy from JavaScript memory into wasm memory; the
    # tensors are NumPy views on it from here on.
    _assemblers[model].add(index, data.to_memoryview())
    return None


@_json
def finish_model(model):
    engine = _assemblers.pop(model).engine()
    _engines[model] = engine
    return {"config": engine.model.config.to_dict(), "name": engine.name, "backend": engine.model.backend}


def drop_model(model):
    _assemblers.pop(model, None)


def _seed(seed):
    # Seeds up to 2**63 - 1 do not fit a JavaScript number: the page may send digits.
    if isinstance(seed, str) and seed.strip().isdigit():
        return int(seed)
    return seed


@_json
def generate_start(req, model, prompt, temperature, top_k, top_p, seed, max_tokens, candidates):
    params = SamplingParams(temperature, top_k, top_p, _seed(seed))
    gen = _engines[model].generate(prompt, params, max_tokens=max_tokens, n_candidates=candidates)
    _generations[req] = gen
    # A JavaScript number holds integers exactly only up to 2**53: larger seeds go as digits.
    seed = gen.seed if gen.seed < 2**53 else str(gen.seed)
    return {"seed": seed, "prompt_tokens": len(gen.prompt_ids)}


@_json
def generate_step(req, forced_id):
    return _generations[req].step(forced_id)


@_json
def peek(req):
    """Candidates for the NEXT token, before one is chosen (Step mode lets the user pick).

    Uses the same sampling_distribution/describe as Generation.step, on the logits the
    generation already holds for the next position, so a later step(forced_id) shows the
    very same numbers. (Generation has no public accessor for them yet: _advance.)
    """
    gen = _generations[req]
    logits = gen._advance()
    ids, probs = sampling_distribution(logits, gen.sampler.params)
    view = describe(logits, int(ids[0]), ids, probs, gen.n_candidates)
    label = gen.engine.label
    return {
        "index": len(gen.ids),
        "candidates": [{**c, "token": label(c["id"]), "chosen": False} for c in view.candidates],
        "shown_mass": view.shown_mass,
    }


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
`;
