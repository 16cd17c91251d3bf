// Drawing tokens: chips for the generated tokens, bars for the candidates of one step.

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

/** A chip for generated token `step` (engine step dict); clicking it shows its bars. */
export function tokenChip(step, onSelect) {
  const li = document.createElement("li");
  const chip = document.createElement("button");
  chip.type = "button";
  chip.className = "chip";
  if (step.id === 50256) chip.classList.add("eot");
  if (!isWholeUTF8(step.bytes)) chip.classList.add("partial");  // part of a character
  chip.dataset.index = step.index;
  chip.dataset.id = step.id;
  chip.title = `token #${step.index + 1} · id ${step.id} · bytes ${hexPairs(step.bytes)} · ` +
    `p ${percent(step.prob)} (rank ${step.rank})`;
  chip.setAttribute("aria-label", `token ${step.index + 1}: ${step.token}, id ${step.id}`);
  setTokenText(chip, step.token);
  chip.addEventListener("click", () => onSelect(step.index));
  li.append(chip);
  return li;
}

/**
 * Draw the candidates of one step into `list` (an <ol>) and the mass not shown into `other`.
 * `pick(id)`, when given, makes each candidate a button (Step mode: append this token).
 */
export function drawCandidates(list, other, { candidates, shown_mass }, pick = null) {
  list.replaceChildren();
  for (const c of candidates) {
    const li = document.createElement("li");
    li.className = "cand";
    li.classList.toggle("chosen", c.chosen);
    li.dataset.id = c.id;
    li.dataset.prob = c.prob;
    li.dataset.share = c.sample_prob;

    const name = document.createElement(pick ? "button" : "span");
    name.className = "tok";
    setTokenText(name, c.token);
    name.title = `id ${c.id}`;
    if (pick) {
      name.type = "button";
      name.setAttribute("aria-label", `append ${c.token}`);
      name.addEventListener("click", () => pick(c.id));
    }

    // The model's probability: the bar people read. Its accessible name is the token.
    const meter = document.createElement("meter");
    meter.min = 0;
    meter.max = 1;
    meter.value = c.prob;
    meter.setAttribute("aria-label", c.token);
    meter.title = `${percent(c.prob)} under the model`;

    const prob = document.createElement("span");
    prob.className = "prob";
    prob.textContent = percent(c.prob);

    // Its share once temperature / top-k / top-p have reshaped the distribution.
    const share = document.createElement("span");
    share.className = "share";
    const bar = document.createElement("span");
    bar.className = "share-bar";
    bar.style.width = `${(c.sample_prob * 100).toFixed(2)}%`;
    bar.setAttribute("aria-hidden", "true");
    const shareText = document.createElement("span");
    shareText.className = "share-text";
    shareText.textContent = c.sample_prob > 0 ? `${percent(c.sample_prob)} sampled` : "never sampled";
    share.append(bar, shareText);

    li.append(name, meter, prob, share);
    if (c.chosen) {
      const mark = document.createElement("span");
      mark.className = "chosen-mark";
      mark.textContent = "chosen";
      li.append(mark);
    }
    list.append(li);
  }
  other.textContent = `other tokens: ${percent(Math.max(0, 1 - shown_mass))}`;
}
