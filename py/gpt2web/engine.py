"""One model + one tokenizer, and the jobs users ask of them.

This is the single code path behind the CLI, the tests and the browser worker: next-token
tables, generation step by step (with the candidates view), and scoring a text.
Everything returned is plain dicts and lists, so it crosses to JavaScript unchanged.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from .model import GPT2, ContextFullError, GPT2Config
from .explain import ExplainJobs
from .sampling import Sampler, SamplingParams, describe, log_softmax, ranked, sampling_distribution
from .tokenizer import EOT_ID, GPT2_TIKTOKEN_SHA256, Tokenizer, default_tokenizer
from .weights import WeightsError, parse_manifest, read_model_dir, tensors_from_shard, tokenizer_path

__all__ = ["Engine", "Generation", "PromptError", "ShardAssembler", "ContextFullError", "sliding_windows"]

MAX_NEW_TOKENS = 1024


class PromptError(ValueError):
    """The prompt cannot be run as it is; the message says why and what to do."""


class Engine(ExplainJobs):  # + the views' jobs: attention, lens, neighbors (explain.py)
    def __init__(self, model: GPT2, tokenizer: Tokenizer, manifest: Mapping | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.manifest = dict(manifest or {})
        self.name = self.manifest.get("name", "model")
        if tokenizer.n_vocab > model.config.n_vocab:
            raise WeightsError(f"the tokenizer has {tokenizer.n_vocab} tokens but the model only "
                               f"{model.config.n_vocab}")

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, model_dir: str | Path) -> "Engine":
        """Load a converted model folder (manifest.json + shards) from disk."""
        manifest, tensors = read_model_dir(model_dir)
        tok_file = tokenizer_path(model_dir, manifest)
        if tok_file.is_file():
            tok = Tokenizer.from_bytes(tok_file.read_bytes(), expected_sha256=manifest["tokenizer"]["sha256"],
                                       source=str(tok_file))
        elif manifest["tokenizer"]["sha256"] == GPT2_TIKTOKEN_SHA256:
            tok = default_tokenizer()  # a model folder outside weights/: the same vocabulary, by hash
        else:
            raise WeightsError(f"the model's vocabulary {tok_file} is missing")
        return cls(GPT2(GPT2Config.from_dict(manifest["config"]), tensors), tok, manifest)

    # ------------------------------------------------------------------ prompts

    def label(self, token_id: int) -> str:
        return self.tokenizer.token_label(token_id)

    def encode_text(self, text: str, what: str = "prompt") -> list[int]:
        """The ids of `text`, any length; a PromptError for what cannot be run (empty, not text)."""
        if not isinstance(text, str):
            raise PromptError(f"the {what} must be text, got {type(text).__name__}")
        if text == "":
            raise PromptError(f"the {what} is empty: type some text to continue"
                              if what == "prompt" else f"the {what} is empty: give some text to score")
        for i, ch in enumerate(text):
            if "\ud800" <= ch <= "\udfff":
                raise PromptError(f"the {what} has a broken character (unpaired surrogate U+{ord(ch):04X}) "
                                  f"at position {i}: remove it or paste the text again")
        return self.tokenizer.encode(text)

    def encode_prompt(self, prompt: str, reserve: int = 1) -> list[int]:
        ids = self.encode_text(prompt)
        limit = self.model.config.n_ctx - reserve
        if len(ids) > limit:
            raise PromptError(f"the prompt is {len(ids)} tokens long; this model reads at most "
                              f"{self.model.config.n_ctx} tokens, so keep the prompt to {limit} or fewer")
        return ids

    def token_info(self, token_id: int) -> dict:
        return {"id": int(token_id), "token": self.label(token_id),
                "bytes": self.tokenizer.token_bytes(token_id).hex()}

    # ------------------------------------------------------------------ jobs

    def logits(self, ids: list[int]) -> np.ndarray:
        return self.model.forward(ids, self.model.new_cache())

    def next_tokens(self, prompt: str, top: int = 10) -> list[dict]:
        """The model's next-token distribution after `prompt` (T = 1, full softmax), top first."""
        n_vocab = self.model.config.n_vocab
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= n_vocab:
            raise PromptError(f"the number of tokens to show must be a whole number from 1 to {n_vocab}, "
                              f"got {top!r}")
        logits = self.logits(self.encode_prompt(prompt))
        probs = np.exp(log_softmax(logits))
        return [{**self.token_info(i), "prob": float(probs[i])} for i in ranked(logits, top)]

    def score(self, text: str, stride: int | None = None) -> dict:
        """How surprised the model is by each token of `text` (the first follows <|endoftext|>).

        Any length: see `score_ids` for the sliding window used past the model's context.
        """
        return self.score_ids(self.encode_text(text, "text"), stride=stride)

    def default_stride(self) -> int:
        return max(1, self.model.config.n_ctx // 2)

    def score_ids(self, ids: list[int], context: int = EOT_ID, stride: int | None = None) -> dict:
        """Per-token probability and rank of `ids` after `context`, and their perplexity.

        Token i is predicted from `context` and ids[:i]. A text longer than the model's context
        (n_ctx) is read in windows of n_ctx tokens, each starting `stride` tokens after the one
        before (default n_ctx // 2), and each window scores only the tokens no earlier window
        scored: so every token is scored once, with at least n_ctx - stride + 1 tokens before
        it (all of them while the text still fits); the last window ends at the text's end,
        so its tokens get more. A smaller stride gives every token more context and costs about
        n_ctx / stride forward passes of n_ctx tokens per n_ctx tokens of text (stride 1: every
        token sees the n_ctx - 1 tokens before it, one pass per token). Texts of at most n_ctx
        tokens are one window: exactly as before windows existed.

        Each token carries `context`, the number of tokens the model saw before it (the
        <|endoftext|> start included); the result carries `n_ctx`, `stride` and `windows`.
        """
        ids = [int(t) for t in ids]
        if not ids:
            raise PromptError("there is nothing to score: the text has no tokens")
        n_ctx = self.model.config.n_ctx
        if stride is None:
            stride = self.default_stride()
        if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= n_ctx:
            raise PromptError(f"the stride must be a whole number from 1 to the model's context "
                              f"({n_ctx}), got {stride!r}")
        inputs = [int(context)] + ids[:-1]  # inputs[i] is the last token seen before ids[i]
        out, total, windows = [], 0.0, 0
        for start, first, end in sliding_windows(len(ids), n_ctx, stride):
            logits = self.model.forward(inputs[start:end], self.model.new_cache(), last=end - first)
            windows += 1
            for i, row in zip(range(first, end), logits):  # row predicts ids[i]
                t = ids[i]
                lp = log_softmax(row)
                rank = int((row > row[t]).sum() + ((row == row[t]) & (np.arange(row.shape[0]) < t)).sum()) + 1
                out.append({**self.token_info(t), "prob": float(math.exp(lp[t])), "rank": rank,
                            "context": i - start + 1})
                total += float(lp[t])
        return {"tokens": out, "perplexity": math.exp(-total / len(ids)), "n_ctx": n_ctx, "stride": stride,
                "windows": windows}

    def generate(self, prompt: str, params: SamplingParams | None = None, max_tokens: int = 50,
                 n_candidates: int = 10, stop_at_eot: bool = True) -> "Generation":
        return Generation(self, prompt, params or SamplingParams(), max_tokens, n_candidates, stop_at_eot)


def sliding_windows(n: int, n_ctx: int, stride: int) -> Iterator[tuple[int, int, int]]:
    """The windows that score n tokens: (start, first, end) = read inputs[start:end] (at most
    n_ctx of them), score tokens first..end-1. Windows start 0, stride, 2 * stride, ...; the
    last one is moved back to end at n (so it is full), and scores only what is left."""
    start = first = 0
    while first < n:
        end = min(start + n_ctx, n)
        yield start, first, end
        first = end
        start = min(start + stride, max(n - n_ctx, 0))


class Generation:
    """A generation in progress: call `step()` for each new token (or iterate)."""

    def __init__(self, engine: Engine, prompt: str, params: SamplingParams, max_tokens: int,
                 n_candidates: int, stop_at_eot: bool = True):
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_NEW_TOKENS:
            raise PromptError(f"max tokens must be a whole number from 1 to {MAX_NEW_TOKENS}, got {max_tokens!r}")
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or not 0 <= n_candidates <= 100:
            raise PromptError(f"the number of candidates must be from 0 to 100, got {n_candidates!r}")
        self.engine = engine
        self.sampler = Sampler(params)
        self.prompt_ids = engine.encode_prompt(prompt)
        self.max_tokens = max_tokens
        self.n_candidates = n_candidates
        self.stop_at_eot = stop_at_eot
        self.cache = engine.model.new_cache()
        self.ids: list[int] = []  # generated so far
        self.done = False
        self.reason: str | None = None
        self._logits: np.ndarray | None = None
        self._decoder = engine.tokenizer.stream_decoder()
        self.prefill_ms: float | None = None

    @property
    def seed(self) -> int:
        return self.sampler.params.seed

    use_cache = True  # False: every step reads the whole sequence again (the loop view shows why not)
    positions_read = 0  # tokens run through the model so far (a step's "read" is its share)

    def _forward_next(self, chosen: int) -> np.ndarray:
        """The logits after the token just chosen: one new position with the KV cache, or
        without it, a forward pass over every token so far."""
        if self.use_cache:
            self.positions_read += 1
            return self.engine.model.forward([chosen], self.cache)
        self.cache.reset()
        self.positions_read += len(self.prompt_ids) + len(self.ids)
        return self.engine.model.forward(self.prompt_ids + self.ids, self.cache)

    def _advance(self) -> np.ndarray:
        model = self.engine.model
        if self._logits is None:
            t0 = time.perf_counter()
            self._logits = model.forward(self.prompt_ids, self.cache)
            self.positions_read += len(self.prompt_ids)
            self.prefill_ms = (time.perf_counter() - t0) * 1000
        return self._logits

    def peek(self) -> dict:
        """The candidates for the next token before one is picked (for Step mode).

        The same numbers `step()` will show: same logits, same sampling distribution.
        """
        if self.done:
            raise RuntimeError(f"this generation is finished ({self.reason})")
        logits = self._advance()
        ids, probs = sampling_distribution(logits, self.sampler.params)
        view = describe(logits, int(ids[0]), ids, probs, self.n_candidates)
        label = self.engine.label
        return {"index": len(self.ids), "shown_mass": view.shown_mass,
                "candidates": [{**c, "token": label(c["id"]), "chosen": False} for c in view.candidates]}

    def truncate(self, n: int) -> None:
        """Go back to the first `n` generated tokens, to continue differently from there.

        The KV cache is cut back, not recomputed: it keeps the prompt and those tokens, and
        only the last of them runs again (one token's forward pass) to give the logits of
        token n + 1. Draws go on from where the sampler is.
        """
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(self.ids):
            raise PromptError(f"cannot go back to token {n!r}: this generation has {len(self.ids)} tokens")
        if n == len(self.ids):
            return  # nothing to undo (a finished generation stays finished)
        self.ids = self.ids[:n]
        last = self.ids[-1] if n else self.prompt_ids[-1]
        self.cache.length = len(self.prompt_ids) + n - 1  # every position before `last`
        self._logits = self.engine.model.forward([last], self.cache)
        self.done, self.reason = False, None
        self._decoder = self.engine.tokenizer.stream_decoder()
        for i in self.ids:  # text already shown: only the decoder's held-back bytes matter
            self._decoder.push(i)

    def step(self, forced_id: int | None = None) -> dict:
        """Pick the next token (or take `forced_id`, e.g. a candidate the user clicked)."""
        if self.done:
            raise RuntimeError(f"this generation is finished ({self.reason})")
        t0 = time.perf_counter()
        read0 = self.positions_read
        logits = self._advance()
        ids, probs = sampling_distribution(logits, self.sampler.params)
        if forced_id is None:
            chosen = self.sampler.draw(ids, probs, logits)
        else:
            if isinstance(forced_id, bool) or not isinstance(forced_id, int) or not 0 <= forced_id < logits.shape[0]:
                raise PromptError(f"token id {forced_id!r} is not in the vocabulary")
            chosen = forced_id
        choice = describe(logits, chosen, ids, probs, self.n_candidates)
        self.ids.append(chosen)
        n = len(self.ids)
        if self.stop_at_eot and chosen == EOT_ID:
            self.done, self.reason = True, "eot"
        elif n >= self.max_tokens:
            self.done, self.reason = True, "max_tokens"
        elif self.cache.length >= self.engine.model.config.n_ctx:
            self.done, self.reason = True, "context_full"
        else:
            self._logits = self._forward_next(chosen)
        text = "" if chosen == EOT_ID and self.stop_at_eot else self._decoder.push(chosen)
        if self.done:
            text += self._decoder.flush()
        label = self.engine.label
        return {
            "index": n - 1, **self.engine.token_info(chosen), "text": text,
            "prob": choice.prob, "sample_prob": choice.sample_prob, "rank": choice.rank,
            "candidates": [{**c, "token": label(c["id"])} for c in choice.candidates],
            "shown_mass": choice.shown_mass, "done": self.done, "reason": self.reason,
            "ms": (time.perf_counter() - t0) * 1000, "read": self.positions_read - read0,
        }

    def __iter__(self) -> Iterator[dict]:
        while not self.done:
            yield self.step()

    @property
    def text(self) -> str:
        return self.engine.tokenizer.decode([i for i in self.ids if i != EOT_ID])


class ShardAssembler:
    """Builds an Engine from a manifest and shard buffers that arrive one at a time (browser)."""

    def __init__(self, manifest, tokenizer: Tokenizer):
        self.manifest = parse_manifest(manifest)
        self.tokenizer = tokenizer
        self.tensors: dict = {}
        self.loaded: set[int] = set()

    def add(self, index: int, data, sha256: str | None = None) -> None:
        """Shard `index`'s bytes; `sha256`, their digest if the host computed it (see verify_shard)."""
        if not 0 <= index < len(self.manifest["shards"]):
            raise WeightsError(f"the manifest has no shard number {index}")
        self.tensors.update(tensors_from_shard(self.manifest, index, data, sha256))
        self.loaded.add(index)

    @property
    def complete(self) -> bool:
        return len(self.loaded) == len(self.manifest["shards"])

    def engine(self) -> Engine:
        if not self.complete:
            missing = [s["file"] for i, s in enumerate(self.manifest["shards"]) if i not in self.loaded]
            raise WeightsError(f"{len(missing)} shards are not loaded yet, e.g. {missing[0]}")
        cfg = GPT2Config.from_dict(self.manifest["config"])
        return Engine(GPT2(cfg, self.tensors), self.tokenizer, self.manifest)
