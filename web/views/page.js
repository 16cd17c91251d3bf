// The views on the main page: tabs under the candidates, for the selected step (a clicked
// token chip; by default the latest; in Step mode the choice about to be made).

import { ViewsPanel } from "./panel.js";

/** Put the views into `container`; call update(run, pinned, config) whenever the page redraws. */
export function attachViews({ client, container }) {
  const panel = new ViewsPanel(container, { client });
  let live = true;  // whether the next generation uses the KV cache (the loop view's switch)
  panel.options.onCacheChange = (useCache) => { live = useCache; };
  return {
    panel,
    get useCache() { return live; },

    /** The page's run (its steps, the token it shows) became `run` / `pinned`. */
    update(run, pinned, config) {
      if (!run) return panel.setStep(null);
      const b = run.tree?.current ?? run;  // a branching page keeps the steps per branch
      const steps = b.steps ?? [];
      const ended = run.ended ?? run.done;
      const streaming = run.streaming ?? (run.mode === "generate" && !run.done);
      if (streaming && pinned === null) return;  // nothing is computed while tokens stream in
      let index = pinned;
      if (index === null) index = b.upcoming && !ended ? b.upcoming.index : steps.length - 1;
      if (index < 0 || index > steps.length) return;
      const p = run.params;
      const seed = steps[0]?.seed ?? p.seed;
      panel.setStep({
        model: p.model, prompt: p.prompt, ids: steps.slice(0, index).map((s) => s.token_id), index, config,
        token: steps[index] ?? null,
        settings: { temperature: p.temperature, top_k: p.top_k, top_p: p.top_p, seed: seed ?? 1 },
        text: p.prompt + steps.map((s) => s.text).join(""),
        run: { id: run.id, steps, prompt_tokens: steps[0]?.prompt_tokens ?? null, cache: run.cache !== false, done: Boolean(ended) },
      });
    },
  };
}
