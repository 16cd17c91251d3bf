"""Convert a Hugging Face GPT-2 checkpoint into gpt2web shards (host only).

Sources: a checkpoint folder (`config.json` + `model.safetensors` or `pytorch_model.bin`), or,
when online, a model id such as `gpt2`, `distilgpt2` or `gpt2-medium` fetched with
huggingface_hub.

Mapping: Hugging Face names `transformer.h.N.attn.c_attn.weight` become `h.N.attn.c_attn.w`,
and so on. Their four kinds of block matrices are `Conv1D` layers stored `[in, out]`; we
transpose them to `[out, in]` (see `gpt2web.weights` for why). `wte` and `wpe` are already
`[rows, n_embd]`. The LM head is tied to `wte` and is not stored twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..model import GPT2, GPT2Config
from ..weights import WeightsError, read_model_dir, write_model

REPO_ROOT = Path(__file__).resolve().parents[3]
WEIGHTS_DIR = REPO_ROOT / "weights"
TOKENIZER_FILE = WEIGHTS_DIR / "gpt2.tiktoken"

# Fixed prompts on which the converter reports the error its quantization introduced.
CHECK_PROMPTS = [
    "I wish you a happy New",
    "The capital of France is",
    "def fibonacci(n):\n    return",
    "In the beginning God created the heaven and the",
    "Once upon a time, there was a little",
]

_BLOCK_PARTS = {
    "ln_1.weight": "ln_1.g", "ln_1.bias": "ln_1.b",
    "attn.c_attn.weight": "attn.c_attn.w", "attn.c_attn.bias": "attn.c_attn.b",
    "attn.c_proj.weight": "attn.c_proj.w", "attn.c_proj.bias": "attn.c_proj.b",
    "ln_2.weight": "ln_2.g", "ln_2.bias": "ln_2.b",
    "mlp.c_fc.weight": "mlp.c_fc.w", "mlp.c_fc.bias": "mlp.c_fc.b",
    "mlp.c_proj.weight": "mlp.c_proj.w", "mlp.c_proj.bias": "mlp.c_proj.b",
}


class ConvertError(ValueError):
    pass


# What the page says about a converted model, for the checkpoints OpenAI published. Other
# sources get no description unless one is given: the converter cannot tell what they are.
_GPT2_EXAMPLES = ["I wish you a happy New", "The capital of France is", "Once upon a time, there was a little"]
KNOWN_MODELS = {
    "gpt2": "GPT-2 small (124M) by OpenAI, trained on web text (WebText)",
    "gpt2-medium": "GPT-2 medium (355M) by OpenAI, trained on web text (WebText)",
    "gpt2-large": "GPT-2 large (774M) by OpenAI, trained on web text (WebText)",
    "gpt2-xl": "GPT-2 XL (1.5B) by OpenAI, trained on web text (WebText)",
    "distilgpt2": "DistilGPT2 (82M) by Hugging Face, distilled from GPT-2 small on OpenWebText",
}
MAX_DESCRIPTION = 300
MAX_EXAMPLES = 10


def model_card(src: str, description=None, examples=None) -> dict:
    """The `description` and `examples` fields of a manifest: the given ones (checked), else
    defaults for OpenAI's GPT-2 checkpoints named by their hub id; {} when nothing is known."""
    known = None
    if not Path(src).expanduser().exists():  # a hub id, not a local folder
        org, _, hub_name = src.lower().rpartition("/")
        if org in ("", "openai-community", "distilbert"):
            known = KNOWN_MODELS.get(hub_name)
    if description is None:
        description = known
    if examples is None:
        examples = list(_GPT2_EXAMPLES) if known else None
    card = {}
    if description is not None:
        if not isinstance(description, str) or not description.strip():
            raise ConvertError("the description must be a line of text")
        if len(description) > MAX_DESCRIPTION or "\n" in description:
            raise ConvertError(f"the description must be one line of at most {MAX_DESCRIPTION} characters")
        card["description"] = description.strip()
    if examples is not None:
        if isinstance(examples, str) or not isinstance(examples, (list, tuple)) or not examples:
            raise ConvertError("examples must be a list of prompts (text)")
        if len(examples) > MAX_EXAMPLES:
            raise ConvertError(f"give at most {MAX_EXAMPLES} example prompts, not {len(examples)}")
        for e in examples:
            if not isinstance(e, str) or e == "":
                raise ConvertError(f"every example prompt must be non-empty text, got {e!r}")
        card["examples"] = list(examples)
    return card


# Every field of transformers' GPT2Config (and of the PretrainedConfig it extends) is one of:
# mapped onto GPT2Config (the engine's arithmetic), of no effect on next-token probabilities (and
# why), or refused when set to anything but GPT-2's value. tests/test_config_fields.py checks
# that the installed transformers has no field missing here. Anything else in config.json is
# listed by the converter as ignored.
MAPPED = {
    "vocab_size": "n_vocab", "n_positions": "n_ctx", "n_embd": "n_embd", "n_layer": "n_layer",
    "n_head": "n_head", "n_inner": "n_inner", "activation_function": "activation",
    "layer_norm_epsilon": "layer_norm_epsilon", "scale_attn_weights": "scale_attn_weights",
    "scale_attn_by_inverse_layer_idx": "scale_attn_by_inverse_layer_idx",
}

# transformers' activation names -> the engine's (model.ACTIVATIONS). Five names are one
# function: GPT-2's tanh approximation of GELU, written in different ways.
ACTIVATION_NAMES = {
    "gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_new", "gelu_python_tanh": "gelu_new",
    "gelu_fast": "gelu_new", "gelu_accurate": "gelu_new",
    "gelu": "gelu", "gelu_python": "gelu", "relu": "relu", "silu": "silu", "swish": "silu",
    "quick_gelu": "quick_gelu",
}

_DROPOUT = "dropout: training only"
_HEAD = "GPT2DoubleHeadsModel's classification head, not the language model"
_GENERATION = "a generation default: the page and the CLI take their own settings"
_META = "bookkeeping: does not change the arithmetic"
NO_EFFECT = {
    "resid_pdrop": _DROPOUT, "embd_pdrop": _DROPOUT, "attn_pdrop": _DROPOUT, "summary_first_dropout": _DROPOUT,
    "initializer_range": "initialisation: training only",
    "summary_type": _HEAD, "summary_use_proj": _HEAD, "summary_activation": _HEAD,
    "summary_proj_to_labels": _HEAD, "num_labels": _HEAD, "id2label": _HEAD, "label2id": _HEAD,
    "problem_type": _HEAD, "finetuning_task": _HEAD,
    "reorder_and_upcast_attn": "computes attention scores in float32 with the scale folded in: in "
                               "float32 (all this engine computes in) the same numbers",
    "n_ctx": "an old name: transformers sizes the positions by n_positions",
    "use_cache": "the engine always keeps a KV cache",
    "chunk_size_feed_forward": "memory only: the same products in slices",
    "bos_token_id": "GPT-2's vocabulary: <|endoftext|> (50256)", "eos_token_id": "GPT-2's vocabulary: <|endoftext|> (50256)",
    "pad_token_id": "padding: the engine never pads", "sep_token_id": "not used by a GPT-2",
    "decoder_start_token_id": "encoder-decoder models only",
    "task_specific_params": _GENERATION, "max_length": _GENERATION, "min_length": _GENERATION,
    "do_sample": _GENERATION, "early_stopping": _GENERATION, "num_beams": _GENERATION,
    "num_beam_groups": _GENERATION, "diversity_penalty": _GENERATION, "temperature": _GENERATION,
    "top_k": _GENERATION, "top_p": _GENERATION, "typical_p": _GENERATION, "repetition_penalty": _GENERATION,
    "length_penalty": _GENERATION, "no_repeat_ngram_size": _GENERATION,
    "encoder_no_repeat_ngram_size": _GENERATION, "bad_words_ids": _GENERATION,
    "num_return_sequences": _GENERATION, "output_scores": _GENERATION, "return_dict_in_generate": _GENERATION,
    "forced_bos_token_id": _GENERATION, "forced_eos_token_id": _GENERATION, "remove_invalid_values": _GENERATION,
    "exponential_decay_length_penalty": _GENERATION, "suppress_tokens": _GENERATION,
    "begin_suppress_tokens": _GENERATION,
    "architectures": _META, "model_type": _META, "transformers_version": _META, "_name_or_path": _META,
    "dtype": "the weights' stored type: the converter reads them as float32",
    "torch_dtype": "the weights' stored type: the converter reads them as float32",
    "use_bfloat16": "the weights' stored type: the converter reads them as float32",
    "output_hidden_states": _META, "output_attentions": _META, "return_dict": _META, "torchscript": _META,
    "tf_legacy_loss": _META, "tokenizer_class": _META, "prefix": _META, "gradient_checkpointing": _META,
    "is_decoder": "GPT-2 is always causal", "tie_encoder_decoder": "encoder-decoder models only",
    "cross_attention_hidden_size": "encoder-decoder models only",
}

# Settings this engine cannot run: the value GPT-2 has, and what to say otherwise.
REFUSED = {
    "add_cross_attention": (False, "cross-attention blocks need an encoder; this engine runs GPT-2 alone"),
    "is_encoder_decoder": (False, "an encoder-decoder model is not a GPT-2"),
    "tie_word_embeddings": (True, "the LM head is a matrix of its own; this engine ties it to wte, as GPT-2 does"),
    "pruned_heads": ({}, "pruned heads leave blocks with fewer heads than n_head"),
}


def config_from_hf(hf: dict) -> GPT2Config:
    """The engine's config for a Hugging Face GPT-2 config.json; a ConvertError of one line that
    names the setting when the engine cannot run it (never a model that silently differs)."""
    model_type = hf.get("model_type", "gpt2")
    if model_type != "gpt2":
        raise ConvertError(f"model_type {model_type!r}: this converter reads GPT-2 checkpoints (model_type 'gpt2')")
    for key, (ok, why) in REFUSED.items():
        if key in hf and hf[key] not in (ok, None) and not (key == "pruned_heads" and not hf[key]):
            raise ConvertError(f"{key}={json.dumps(hf[key])} is not supported: {why}")
    act = hf.get("activation_function", "gelu_new")
    if act not in ACTIVATION_NAMES:
        raise ConvertError(f"activation_function {act!r} is not supported; this engine runs "
                           f"{', '.join(sorted(ACTIVATION_NAMES))}")
    try:
        n_inner = hf.get("n_inner")
        return GPT2Config.from_dict({
            "n_vocab": hf["vocab_size"], "n_ctx": hf["n_positions"], "n_embd": hf["n_embd"],
            "n_layer": hf["n_layer"], "n_head": hf["n_head"],
            "layer_norm_epsilon": hf.get("layer_norm_epsilon", 1e-5),
            "n_inner": n_inner if n_inner is not None else 4 * hf["n_embd"],  # written out: no guessing later
            "activation": ACTIVATION_NAMES[act],
            "scale_attn_weights": hf.get("scale_attn_weights", True),
            "scale_attn_by_inverse_layer_idx": hf.get("scale_attn_by_inverse_layer_idx", False),
        })
    except KeyError as e:
        raise ConvertError(f"config.json lacks {e.args[0]!r}: is it a GPT-2 config?") from None
    except WeightsError as e:
        raise ConvertError(str(e).replace("config.", "config setting ", 1)) from None


def ignored_config_fields(hf: dict) -> list[str]:
    """Fields of config.json that are none of GPT2Config's known ones (listed by the converter)."""
    return sorted(k for k in hf if k not in MAPPED and k not in NO_EFFECT and k not in REFUSED)


def tensors_from_hf(state: dict, config: GPT2Config) -> dict[str, np.ndarray]:
    """Hugging Face state dict (NumPy arrays) -> our names, float32, matrices `[out, in]`."""
    prefix = "transformer." if "transformer.wte.weight" in state else ""
    get = lambda k: np.asarray(state[prefix + k], dtype=np.float32)  # noqa: E731
    try:
        out = {"wte": get("wte.weight"), "wpe": get("wpe.weight"),
               "ln_f.g": get("ln_f.weight"), "ln_f.b": get("ln_f.bias")}
        for i in range(config.n_layer):
            for hf_name, ours in _BLOCK_PARTS.items():
                a = get(f"h.{i}.{hf_name}")
                out[f"h.{i}.{ours}"] = np.ascontiguousarray(a.T) if ours.endswith(".w") else a
    except KeyError as e:
        raise ConvertError(f"the checkpoint has no tensor {e.args[0]}: is it a GPT-2 model?") from None
    for name, shape in config.tensor_shapes().items():
        if out[name].shape != shape:
            raise ConvertError(f"tensor {name} has shape {out[name].shape}, config.json implies {shape}")
    return out


def load_hf_checkpoint(folder: Path) -> tuple[GPT2Config, dict[str, np.ndarray]]:
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise ConvertError(f"{folder} has no config.json: not a Hugging Face checkpoint folder")
    config = config_from_hf(json.loads(cfg_file.read_text()))
    st = folder / "model.safetensors"
    if st.is_file():
        from safetensors.numpy import load_file
        state = load_file(str(st))
    elif (folder / "pytorch_model.bin").is_file():
        try:
            import torch
        except ImportError:
            raise ConvertError("pytorch_model.bin needs PyTorch to read (pip install torch), "
                               "or give a folder with model.safetensors") from None
        sd = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        state = {k: v.float().numpy() for k, v in sd.items()}
    else:
        raise ConvertError(f"{folder} has neither model.safetensors nor pytorch_model.bin")
    return config, tensors_from_hf(state, config)


def resolve_source(src: str) -> Path:
    """A local folder, or a Hugging Face model id downloaded with huggingface_hub."""
    p = Path(src).expanduser()
    if p.exists():
        return p
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ConvertError(f"{src} is not a folder, and huggingface_hub is not installed to fetch it") from None
    try:
        return Path(snapshot_download(src, allow_patterns=["config.json", "model.safetensors"]))
    except Exception as e:  # network errors, unknown repo, ...
        raise ConvertError(f"could not fetch model {src!r} from the Hugging Face hub: "
                           f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def quantization_report(reference: GPT2, quantized: GPT2, prompts=CHECK_PROMPTS) -> dict:
    """Compare the next-token distributions of two models on fixed prompts."""
    from ..tokenizer import default_tokenizer

    tok = default_tokenizer()
    max_diff = top1 = kl = scale = 0.0
    n = 0
    for prompt in prompts:
        ids = tok.encode(prompt)[: reference.config.n_ctx]
        a = reference.forward(ids, reference.new_cache(), all_logits=True).astype(np.float64)
        b = quantized.forward(ids, quantized.new_cache(), all_logits=True).astype(np.float64)
        max_diff = max(max_diff, float(np.abs(a - b).max()))
        scale = max(scale, float(np.abs(a).max()))
        top1 += float((a.argmax(-1) == b.argmax(-1)).sum())
        la = a - a.max(-1, keepdims=True)
        la -= np.log(np.exp(la).sum(-1, keepdims=True))
        lb = b - b.max(-1, keepdims=True)
        lb -= np.log(np.exp(lb).sum(-1, keepdims=True))
        kl += float((np.exp(la) * (la - lb)).sum())
        n += len(ids)
    return {"max_logit_diff": max_diff, "logit_scale": scale, "top1_agreement": top1 / n,
            "kl_divergence": kl / n, "positions": n}


def convert(src: str, out: str | Path, dtype: str = "int8", group_size: int = 0,
            name: str | None = None, report: bool = True, log=print, *,
            description: str | None = None, examples: list[str] | None = None) -> dict:
    """Convert checkpoint `src` into `out`. `description` (one line) and `examples` (prompts
    that suit the model) go into the manifest for the page; for OpenAI's GPT-2 checkpoints
    named by hub id (gpt2, distilgpt2, gpt2-medium, ...) they default to what those are."""
    card = model_card(src, description, examples)  # checked before any work
    folder = resolve_source(src)
    config, tensors = load_hf_checkpoint(folder)
    ignored = ignored_config_fields(json.loads((folder / "config.json").read_text()))
    if ignored:
        log(f"config.json: ignored {', '.join(ignored)} (not settings of a GPT-2 that this converter knows)")
    out = Path(out)
    if not TOKENIZER_FILE.is_file():
        raise ConvertError(f"the GPT-2 vocabulary {TOKENIZER_FILE} is missing")
    manifest = write_model(out, config.to_dict(), tensors, dtype=dtype, group_size=group_size,
                           name=name or out.name, tokenizer_file="../gpt2.tiktoken",
                           extra={"source": str(src), **card})
    total = sum(s["bytes"] for s in manifest["shards"])
    log(f"wrote {out}/manifest.json and {len(manifest['shards'])} shards, {total / 1e6:.1f} MB ({dtype})")
    if report:
        ref = GPT2(config, tensors)
        _, qt = read_model_dir(out)
        rep = quantization_report(ref, GPT2(config, qt))
        manifest["quantization_error"] = rep
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        log(f"quantization error vs float32 on {rep['positions']} positions: "
            f"max |logit diff| {rep['max_logit_diff']:.4g} (logit scale {rep['logit_scale']:.3g}), "
            f"top-1 agreement {rep['top1_agreement'] * 100:.2f}%, KL {rep['kl_divergence']:.3g} nats")
    return manifest
