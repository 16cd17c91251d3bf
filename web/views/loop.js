// The loop: one forward pass per token. The first reads the whole prompt at once (prefill);
// every later one reads one new token and the keys and values the KV cache kept of all the
// earlier ones (decode). "Without the cache" makes every step read the whole sequence again:
// the time per token then grows with the length.

import { NumbersTable, el, tok, viewFrame } from "./common.js";

export class LoopView {
  static title = "The loop";

  constructor(options = {}) {
    this.frame = viewFrame(LoopView.title,
      "A GPT writes by running its whole network once per token. The first pass reads the prompt " +
      "(prefill); each later pass reads only the newest token, because the KV cache keeps what every " +
      "layer computed for the earlier ones (decode).");
    this.element = this.frame.element;
    this.element.classList.add("v-loop");
    const id = `v-l-${Math.random().toString(36).slice(2, 8)}`;
    this.switch = el("input", { type: "checkbox", id, role: "switch" });
    this.switch.addEventListener("change", () => options.onCacheChange?.(!this.switch.checked));
    this.chart = el("div", { class: "v-lchart", "aria-hidden": "true" });
    this.summary = el("p", { class: "v-summary" });
    this.numbers = new NumbersTable(LoopView.title);
    this.frame.body.append(
      el("div", { class: "v-controls" }, el("label", { class: "v-switch", for: id }, this.switch,
        " Without the cache: every step reads the whole sequence again (press Generate to see it)")),
      this.summary,
      el("div", { class: "v-legend", "aria-hidden": "true" },
        el("span", {}, el("i", { class: "v-sw v-sw-share" }), "prefill (the prompt)"),
        el("span", {}, el("i", { class: "v-sw v-sw-model" }), this.decodeLabel = el("span", { text: "decode" })),
        el("span", { text: "height: the step's time in ms" })),
      this.chart, this.numbers.element);
  }

  /** Whether the next generation should use the KV cache. */
  get useCache() { return !this.switch.checked; }

  /** `step.run`: {steps: token messages, prompt_tokens, cache (whether it was used)}. */
  show(step) {
    const run = step.run;
    if (!run || !run.steps.length) {
      this.summary.textContent = "Generate or Step to see the loop.";
      this.chart.replaceChildren();
      this.numbers.fill(["step", "token", "pass", "positions read", "positions in the cache", "ms"], []);
      return;
    }
    const n0 = run.prompt_tokens ?? 0;
    const cached = run.cache !== false;
    const rows = run.steps.map((s, i) => {
      const held = n0 + i;  // positions the cache holds when the pass for this step's logits ran
      const kind = i === 0 ? "prefill" : "decode";
      const reads = s.read ?? (i === 0 ? n0 : cached ? 1 : held + 1);  // the engine's count, when it sends one
      return { s, i, kind, reads, held: cached ? held : 0, ms: s.ms };
    });
    this.decodeLabel.textContent = cached ? "decode (one new token)" : "decode (the whole sequence again)";
    const max = Math.max(...rows.map((r) => r.ms));
    this.chart.replaceChildren(...rows.map((r) => {
      const bar = el("span", { class: `v-lbar v-${r.kind}` });
      bar.style.height = `${Math.max(2, (r.ms / max) * 100)}%`;
      bar.title = `step ${r.i + 1}: ${r.ms.toFixed(1)} ms, ${r.kind}`;
      return bar;
    }));
    const decode = rows.slice(1).map((r) => r.ms);
    const first = decode.slice(0, Math.max(1, Math.floor(decode.length / 4)));
    const last = decode.slice(-Math.max(1, Math.floor(decode.length / 4)));
    const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
    this.summary.replaceChildren(
      `${cached ? "With" : "Without"} the KV cache: the prompt's ${n0} tokens read at once, then ${rows.length - 1} ` +
      (cached ? "passes of one new token each" : "passes over the whole sequence") + ". " +
      (decode.length >= 4 ? `Decode steps took ${mean(first).toFixed(1)} ms early and ${mean(last).toFixed(1)} ms at the end.` : ""),
    );
    this.numbers.fill(["step", "token", "pass", "positions read", "positions in the cache", "ms"],
      rows.map((r) => [r.i + 1, tok(r.s.token), r.kind, r.reads, r.held, r.ms.toFixed(1)]));
  }
}
