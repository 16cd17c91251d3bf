// The page's state as a link: model, prompt, settings, seed and every token of the text, in
// the URL's fragment (never sent to the server). Opening the link rebuilds the same tokens
// with the same bars: the page replays them as picks, so the sampler's draws do not matter.

import { checkSettings } from "./settings.js";
import { t } from "./i18n.js";

export const LINK_VERSION = "1";
const MAX_IDS = 1024;

/** The fragment ("#v=1&model=...") for a run: its settings and the ids of its tokens. */
export function encodeLink({ model, prompt, temperature, top_k, top_p, seed, max_tokens }, ids) {
  const q = new URLSearchParams();
  q.set("v", LINK_VERSION);
  q.set("model", model);
  q.set("prompt", prompt);
  q.set("temperature", String(temperature));
  q.set("top_k", String(top_k));
  q.set("top_p", String(top_p));
  if (seed != null) q.set("seed", String(seed));
  q.set("max_tokens", String(max_tokens));
  if (ids.length) q.set("ids", ids.join("."));
  return `#${q.toString()}`;
}

/**
 * Read a fragment: null when there is none (a plain visit), else {state} with the fields'
 * text and the ids, or {error} saying what is wrong with it. `models`: the ids the server has.
 */
export function decodeLink(hash, models) {
  const raw = (hash ?? "").replace(/^#/, "");
  if (raw === "") return null;
  let q;
  try {
    q = new URLSearchParams(raw);
  } catch {
    return { error: t("link.unreadable") };
  }
  const v = q.get("v");
  if (v !== LINK_VERSION) {
    return { error: v == null ? t("link.unreadable") : t("link.version", { v }) };
  }
  const model = q.get("model") ?? "";
  if (!models.includes(model)) return { error: t("link.model", { model }) };
  const fields = {
    temperature: q.get("temperature") ?? "", top_k: q.get("top_k") ?? "", top_p: q.get("top_p") ?? "",
    seed: q.get("seed") ?? "", max_tokens: q.get("max_tokens") ?? "",
  };
  const prompt = q.get("prompt") ?? "";
  const checked = checkSettings((key) => fields[key], { model, prompt });
  if (checked.error) return { error: t("link.setting", { problem: checked.error }) };
  const idsText = q.get("ids") ?? "";
  if (idsText !== "" && !/^\d{1,6}(\.\d{1,6})*$/.test(idsText)) return { error: t("link.ids") };
  const ids = idsText === "" ? [] : idsText.split(".").map(Number);
  if (ids.length > Math.min(MAX_IDS, checked.params.max_tokens)) return { error: t("link.tooMany") };
  return { state: { model, prompt, fields, ids, params: checked.params } };
}
