"""The `gpt2web` command: the engine on the command line, plus host tools.

Every subcommand goes through `gpt2web.engine`, the same code the browser worker runs.
Errors a user can cause print one line on stderr and exit non-zero; no tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .paths import data_root

REPO_ROOT = Path(__file__).resolve().parents[3]
WEIGHTS_DIR = data_root() / "weights"  # the checkout's, or the installed package's
DEFAULT_MODEL = WEIGHTS_DIR / "demo"


class CLIError(ValueError):
    """A mistake on the command line: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument (`--seed abc`, a missing prompt) is one line on stderr and
    exit status 2, like every other error here, instead of the whole usage text."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _read_text(arg: str) -> str:
    return sys.stdin.read() if arg == "-" else arg


def _engine(model: str | None):
    from ..engine import Engine

    path = Path(model) if model else DEFAULT_MODEL
    if not path.exists() and not model is None and (WEIGHTS_DIR / model).exists():
        path = WEIGHTS_DIR / model  # a bare model name, as listed in weights/
    return Engine.load(path)


def _params(args):
    from ..sampling import SamplingParams

    return SamplingParams(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                          seed=args.seed).validate()


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _show(label: str) -> str:
    return repr(label)[1:-1] if label.strip() == label and label else f"'{label}'"


# ---------------------------------------------------------------------- subcommands


def cmd_tokenize(args) -> None:
    from ..tokenizer import default_tokenizer

    tok = default_tokenizer()
    text = _read_text(args.text)
    if text == "":
        raise CLIError("the text is empty: give some text to tokenize")
    ids = tok.encode(text)
    tokens = [tok.token_label(i) for i in ids]
    if args.json:
        print(json.dumps({"ids": ids, "tokens": tokens}, ensure_ascii=False))
        return
    rows = [[str(n), str(i), f"'{t}'", tok.token_bytes(i).hex(" ")] for n, (i, t) in enumerate(zip(ids, tokens))]
    print(_table(rows, ["#", "id", "token", "bytes"]))
    print(f"{len(text.encode('utf-8'))} bytes -> {len(ids)} tokens")


def cmd_next(args) -> None:
    eng = _engine(args.model)
    rows = eng.next_tokens(_read_text(args.prompt), top=args.top)
    if args.json:
        print(json.dumps([{"id": r["id"], "token": r["token"], "prob": r["prob"]} for r in rows], ensure_ascii=False))
        return
    print(_table([[str(n), f"'{r['token']}'", str(r["id"]), f"{r['prob']:.9g}"] for n, r in enumerate(rows)],
                 ["#", "token", "id", "probability"]))


def cmd_generate(args) -> None:
    eng = _engine(args.model)
    prompt = _read_text(args.prompt)
    gen = eng.generate(prompt, _params(args), max_tokens=args.max_tokens, n_candidates=args.candidates)
    steps = []
    if not args.json:
        print(prompt, end="", flush=True)
    for st in gen:
        steps.append(st)
        if not args.json:
            if args.candidates:
                print()
                cands = ", ".join(f"'{c['token']}' {c['prob']:.3f}" + ("*" if c["chosen"] else "")
                                  for c in st["candidates"])
                print(f"  [{st['index']}] picked '{st['token']}' (p={st['prob']:.4f}, rank {st['rank']}): {cands}")
            else:
                print(st["text"], end="", flush=True)
    if args.json:
        print(json.dumps({"prompt": prompt, "seed": gen.seed, "ids": gen.ids, "text": gen.text,
                          "reason": gen.reason,
                          "steps": [{k: s[k] for k in ("id", "token", "prob", "sample_prob", "rank",
                                                       "candidates", "shown_mass")} for s in steps]},
                         ensure_ascii=False))
    else:
        if args.candidates:
            print(f"\n{prompt}{gen.text}")
        else:
            print(flush=True)  # the streamed text ends its line, like every other output
        print(f"[{len(gen.ids)} tokens, stopped: {gen.reason}, seed {gen.seed}]", file=sys.stderr)


def cmd_score(args) -> None:
    eng = _engine(args.model)
    res = eng.score(_read_text(args.text), stride=args.stride)
    if args.json:
        print(json.dumps({"tokens": [{k: t[k] for k in ("id", "token", "prob", "rank", "context")}
                                     for t in res["tokens"]],
                          **{k: res[k] for k in ("perplexity", "n_ctx", "stride", "windows")}},
                         ensure_ascii=False))
        return
    print(_table([[f"'{t['token']}'", str(t["id"]), f"{t['prob']:.6g}", str(t["rank"]), str(t["context"])]
                  for t in res["tokens"]], ["token", "id", "probability", "rank", "context"]))
    print(f"perplexity {res['perplexity']:.3f}")
    if res["windows"] > 1:
        print(f"{len(res['tokens'])} tokens, longer than the model's context of {res['n_ctx']}: read in "
              f"{res['windows']} windows, {res['stride']} tokens apart (--stride)")


def cmd_attention(args) -> None:
    res = _engine(args.model).attention(_read_text(args.text), args.layer, args.head)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return
    toks, w = res["tokens"], res["weights"]
    who = f"head {res['head']}" if res["head"] is not None else "mean over heads"
    print(f"layer {res['layer']}, {who}: row i = how much token i attends to each token j <= i")
    if len(toks) <= 12:
        print(_table([[str(i), _show(t["token"])] + [f"{v:.3f}" if j <= i else "" for j, v in enumerate(row)]
                      for i, (t, row) in enumerate(zip(toks, w))], ["#", "token"] + [str(j) for j in range(len(toks))]))
    else:  # too wide for a matrix: each row's five largest weights
        rows = []
        for i, (t, row) in enumerate(zip(toks, w)):
            best = sorted(range(i + 1), key=lambda j: (-row[j], j))[:5]
            rows.append([str(i), _show(t["token"]), ", ".join(f"{j} {_show(toks[j]['token'])} {row[j]:.3f}" for j in best)])
        print(_table(rows, ["#", "token", "attends most to (position token weight)"]))


def cmd_lens(args) -> None:
    res = _engine(args.model).lens(_read_text(args.text), top=args.top)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return
    n = len(res["layers"]) - 1
    rows = [["embeddings" if L["layer"] == 0 else f"block {L['layer']}" + (" (= next)" if L["layer"] == n else ""),
             ", ".join(f"{_show(t['token'])} {t['prob']:.4g}" for t in L["top"])] for L in res["layers"]]
    print(f"after the last token {_show(res['tokens'][-1]['token'])}: ln_f + LM head on the residual stream")
    print(_table(rows, ["read after", f"top {args.top} (probability)"]))


def cmd_neighbors(args) -> None:
    res = _engine(args.model).neighbors(args.token, top=args.top)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return
    t = res["token"]
    print(f"nearest to {_show(t['token'])} (id {t['id']}) by the cosine of their embedding rows")
    print(_table([[str(n + 1), _show(r["token"]), str(r["id"]), f"{r['cosine']:.6f}"]
                  for n, r in enumerate(res["neighbors"])], ["#", "token", "id", "cosine"]))


def cmd_convert(args) -> None:
    from .convert import convert

    out = args.out or str(WEIGHTS_DIR / Path(args.src.rstrip("/")).name)
    convert(args.src, out, dtype=args.dtype, group_size=args.group_size, report=not args.no_report,
            log=lambda m: print(m, file=sys.stderr), description=args.description, examples=args.example)


def cmd_export(args) -> None:
    from .export import export

    from .paths import ensure_engine_wheel, ensure_web_runtime

    export(data_root(), Path(args.out), models=args.model or None, log=lambda m: print(m, file=sys.stderr),
           runtime_dir=ensure_web_runtime(), wheels_dir=ensure_engine_wheel())


def cmd_bench(args) -> None:
    from .bench import format_table, run_bench

    result = run_bench(args.model, runs=args.runs, quick=args.quick, only=args.only, blas_threads=args.blas_threads,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=1, ensure_ascii=False) if args.json else format_table(result))


def cmd_serve(args) -> None:
    from .server import serve

    from .paths import ensure_engine_wheel, ensure_web_runtime

    if args.weights is not None and not (args.weights.is_dir() and any(args.weights.glob("*/manifest.json"))):
        raise ValueError(f"--weights {args.weights}: not a folder of models (no */manifest.json in it)")
    serve(data_root(), host=args.host, port=args.port, isolate=args.isolate, weights_dir=args.weights,
          runtime_dir=ensure_web_runtime(quiet=False), wheels_dir=ensure_engine_wheel())


# ---------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="gpt2web", description="GPT-2 in NumPy: tokenize, predict, generate, score.")
    sub = ap.add_subparsers(dest="command", required=True)

    def model_arg(p):
        p.add_argument("--model", help=f"model folder or name under weights/ (default: {DEFAULT_MODEL.relative_to(REPO_ROOT)})")

    p = sub.add_parser("tokenize", help="show the tokens of a text")
    p.add_argument("text", help="the text, or - to read stdin")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("next", help="next-token probabilities after a prompt")
    p.add_argument("prompt")
    model_arg(p)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_next)

    p = sub.add_parser("generate", help="continue a prompt, token by token")
    p.add_argument("prompt")
    model_arg(p)
    p.add_argument("--max-tokens", type=int, default=40)
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=0, help="0 = no limit")
    p.add_argument("--top-p", type=float, default=1.0, help="1 = no limit")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--candidates", type=int, default=0, help="show the top N candidates of every step")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("score", help="per-token probability and rank of a text, and its perplexity")
    p.add_argument("text", help="the text (any length), or - to read stdin")
    model_arg(p)
    p.add_argument("--stride", type=int, default=None,
                   help="past the model's context, each window starts this many tokens after the one "
                        "before (default: half the context; smaller = more context per token, slower)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("attention", help="attention weights of one layer (and head) over a text's tokens")
    p.add_argument("text", help="the text, or - to read stdin")
    model_arg(p)
    p.add_argument("--layer", type=int, required=True, help="the layer, from 0")
    p.add_argument("--head", type=int, default=None, help="the head, from 0 (default: the mean over heads)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_attention)

    p = sub.add_parser("lens", help="layer by layer: the top next tokens read after each block (logit lens)")
    p.add_argument("text", help="the text, or - to read stdin")
    model_arg(p)
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lens)

    p = sub.add_parser("neighbors", help="a token's nearest tokens by the cosine of their embeddings")
    p.add_argument("token", help="a token id, or a text that is one token (e.g. ' God')")
    model_arg(p)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_neighbors)

    p = sub.add_parser("convert", help="convert a Hugging Face GPT-2 checkpoint (folder or model id)")
    p.add_argument("src", help="checkpoint folder, or a model id such as gpt2, distilgpt2, gpt2-medium")
    p.add_argument("--out", help="output folder (default: weights/<name>)")
    p.add_argument("--dtype", choices=["fp32", "fp16", "int8", "float32", "float16"], default="int8")
    p.add_argument("--group-size", type=int, default=0, help="int8: scales per group of N inputs (0 = per row)")
    p.add_argument("--no-report", action="store_true", help="skip the quantization error report")
    p.add_argument("--description", help="one line the page shows about the model (default: known for "
                                         "OpenAI's GPT-2 checkpoints, else none)")
    p.add_argument("--example", action="append", metavar="PROMPT",
                   help="an example prompt the page offers (repeat it; the first is the page's start)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("export", help="write a self-contained folder for offline demos")
    p.add_argument("out", help="a new folder")
    p.add_argument("--model", action="append", help="a model under weights/ (repeatable; default: all)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bench", help="time the engine in headless Chromium (real server and worker) and in CPython")
    p.add_argument("--model", help="model folder or name under weights/ (default: GPT-2 124M shape, random "
                                   "weights, int8, built once into build/bench-124m/)")
    p.add_argument("--runs", type=int, default=None, help="runs per figure, the median is shown (default 3; --quick: 1)")
    p.add_argument("--quick", action="store_true", help="fewer tokens and runs: a smoke test")
    p.add_argument("--only", choices=["browser", "cpython"], help="run one side only")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="CPython side: run it in a subprocess with this many BLAS threads (default: as configured)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("serve", help="serve the page, the runtime and weights/ (static files only)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--isolate", action="store_true", help="send COOP/COEP headers (cross-origin isolation)")
    p.add_argument("--weights", type=Path, default=None, metavar="DIR",
                   help="serve the models in DIR (folders with a manifest.json) instead of weights/")
    p.set_defaults(func=cmd_serve)

    from .render import add_parser as add_render_parser

    add_render_parser(sub)  # gpt2web render: a widget's first view as HTML (docs builds)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "dtype", None):
        args.dtype = {"fp32": "float32", "fp16": "float16"}.get(args.dtype, args.dtype)
    try:
        args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except ModuleNotFoundError as e:  # an optional dependency: say which extra brings it
        from .extras import missing_dependency

        print(f"gpt2web {args.command}: error: {missing_dependency(e)}", file=sys.stderr)
        return 2
    except (ValueError, OSError, KeyError) as e:
        print(f"gpt2web {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
