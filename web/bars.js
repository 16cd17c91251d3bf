// Drawing tokens: chips for the generated tokens, bars for the candidates of one step.

import { t as translate } from "./i18n.js";

// The interface's words: the page's language, or the one a widget asks for (its `lang`).
let lang;
const t = (key, vars) => translate(key, vars, lang);
/** Run `draw` with the words of language `l` (undefined: the page's). */
function inLanguage(l, draw) {
  const before = lang;
  lang = l;
  try {
    return draw();
  } finally {
    lang = before;
  }
}

/** A probability as a percentage people can read: 96.8%, 0.42%, 0.0031%, 2.1e-7%. */
export function percent(p) {
  const x = p * 100;
  if (x >= 99.95 && x < 100) return ">99.9%";  // never round a near-certainty up to 100%
  if (x >= 10) return `${x.toFixed(1)}%`;
  if (x >= 0.001) return `${Number(x.toPrecision(2))}%`;
  if (x === 0) return "0%";
  return `${x.toExponential(1)}%`;
}

/** Bytes in hex pairs, as in the chips' titles: "20 59 65 61 72". */
export function hexPairs(hex) {
  return (hex.match(/../g) ?? []).join(" ");
}

const strictUTF8 = new TextDecoder("utf-8", { fatal: true });

/** Whether bytes (hex) are complete UTF-8 text, i.e. not part of a character. */
export function isWholeUTF8(hex) {
  const bytes = new Uint8Array((hex.match(/../g) ?? []).map((h) => parseInt(h, 16)));
  try {
    strictUTF8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Fill `el` with a token label, keeping its text exactly the label but marking each
 * space so that " Year" and "Year" look different.
 */
export function setTokenText(el, label) {
  el.replaceChildren();
  for (const part of label.split(/( )/)) {
    if (part === " ") {
      const sp = document.createElement("span");
      sp.className = "sp";
      sp.textContent = " ";
      el.append(sp);
    } else if (part) {
      el.append(part);
    }
  }
}

/** A chip for generated token `step` (a token message); clicking it shows its bars. */
export function tokenChip(step, onSelect, language = undefined) {
  return inLanguage(language, () => chipFor(step, onSelect));
}

function chipFor(step, onSelect) {
  const li = document.createElement("li");
  const chip = document.createElement("button");
  chip.type = "button";
  chip.className = "chip";
  if (step.token_id === 50256) chip.classList.add("eot");
  if (!isWholeUTF8(step.bytes)) chip.classList.add("partial");  // part of a character
  chip.dataset.index = step.index;
  chip.dataset.id = step.token_id;
  chip.title = `token #${step.index + 1} · id ${step.token_id} · bytes ${hexPairs(step.bytes)} · ` +
    `p ${percent(step.prob)} (rank ${step.rank})`;
  chip.setAttribute("aria-label", t("chip.label", { n: step.index + 1, token: step.token, id: step.token_id }));
  setTokenText(chip, step.token);
  chip.addEventListener("click", () => onSelect(step.index));
  li.append(chip);
  return li;
}

/**
 * One candidate as a list item: token, a <meter> with its probability under the model
 * (accessible name: the token), and below it a bar with its share after the settings.
 * `pick(id)`, when given, makes the token a button (Step mode: append this token).
 * A candidate without `sample_prob` (a `next` table: no settings applied) has no share bar.
 */
function candidateRow(c, pick, pickLabel = (x) => t("cand.append", { token: x.token })) {
  const li = document.createElement("li");
  li.className = "cand";
  li.classList.toggle("chosen", Boolean(c.chosen));
  li.dataset.id = c.id;
  li.dataset.prob = c.prob;
  if (c.sample_prob != null) li.dataset.share = c.sample_prob;

  const name = document.createElement(pick ? "button" : "span");
  name.className = "tok";
  setTokenText(name, c.token);
  name.title = `id ${c.id}`;
  if (pick) {
    name.type = "button";
    name.setAttribute("aria-label", pickLabel(c));
    name.addEventListener("click", () => pick(c.id));
  }

  const meter = document.createElement("meter");
  meter.min = 0;
  meter.max = 1;
  meter.value = c.prob;
  meter.setAttribute("aria-label", c.token);
  meter.title = t("cand.underModel", { p: percent(c.prob) });

  const prob = document.createElement("span");
  prob.className = "prob";
  prob.textContent = percent(c.prob);

  li.append(name, meter, prob);
  if (c.sample_prob != null) li.append(...shareBar(c));
  if (c.chosen) {
    const mark = document.createElement("span");
    mark.className = "chosen-mark";
    mark.textContent = t("cand.chosen");
    li.append(mark);
  }
  return li;
}

/** The share once temperature / top-k / top-p have reshaped the distribution, drawn on
 * the same scale as the meter above it: [track, text]. */
function shareBar(c) {
  const track = document.createElement("span");
  track.className = "share-track";
  track.setAttribute("aria-hidden", "true");
  const bar = document.createElement("span");
  bar.className = "share-bar";
  bar.style.width = `${(c.sample_prob * 100).toFixed(3)}%`;
  if (c.sample_prob > 0) track.append(bar);
  const share = document.createElement("span");
  share.className = "share-text";
  share.textContent = c.sample_prob > 0 ? percent(c.sample_prob) : t("cand.excluded");
  share.title = c.sample_prob > 0 ? t("cand.shareTitle") : t("cand.excludedTitle");
  return [track, share];
}

/** Draw the candidates of one step into `list` (an <ol>) and the mass not shown into `other`. */
export function drawCandidates(list, other, { candidates, shown_mass }, pick = null, pickLabel = undefined,
  language = undefined) {
  inLanguage(language, () => {
    list.replaceChildren(...candidates.map((c) => candidateRow(c, pick, pickLabel)));
    other.textContent = t("cand.other", { p: percent(Math.max(0, 1 - shown_mass)) });
  });
}

/**
 * When the sampler chose a token outside the candidates shown, draw it on its own in
 * `list`, so the chosen token is always visible with its numbers. Empties `list` otherwise.
 */
export function drawChosenOutside(list, step, language = undefined) {
  inLanguage(language, () => drawOutside(list, step));
}

function drawOutside(list, step) {
  if (!step || step.candidates.some((c) => c.chosen)) {
    list.replaceChildren();
    list.hidden = true;
    return;
  }
  const row = candidateRow({
    id: step.token_id, token: step.token, prob: step.prob, sample_prob: step.sample_prob, chosen: true,
  }, null);
  list.replaceChildren(row);
  list.setAttribute("aria-label", t("cand.outsideLabel"));
  list.dataset.label = t("cand.outside");
  list.hidden = false;
}
