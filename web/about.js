// What model is this: its name, one line about it and prompts that suit it, from the
// manifest's optional `description` and `examples` (models.json, or the worker's `ready`).
// A model without them gets no line and keeps the default prompt.

import { t } from "./i18n.js";

/** {name, description, examples} from a models.json entry or a `ready` message. */
export function modelCard(m, fallbackName = "") {
  const examples = Array.isArray(m?.examples) ? m.examples.filter((e) => typeof e === "string" && e !== "") : [];
  const description = typeof m?.description === "string" && m.description.trim() ? m.description.trim() : null;
  return { name: m?.name || m?.id || fallbackName, description, examples };
}

/** Fill the "about" line (`about`: the <p>, `name`, `desc`: its parts). */
export function drawAbout({ about, name, desc }, card) {
  name.textContent = card.name ? `${card.name}:` : "";
  desc.textContent = card.description ?? "";
  about.hidden = !card.description;
}

/**
 * Buttons for the example prompts inside `box` (after its first child, the label);
 * `use(prompt)` is called when one is chosen. The box hides when there are none.
 */
export function drawExamples(box, examples, use) {
  const label = box.firstElementChild;
  box.replaceChildren(label);
  for (const prompt of examples) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "example";
    b.textContent = prompt;
    b.setAttribute("aria-label", t("examples.use", { prompt }));
    b.addEventListener("click", () => use(prompt));
    box.append(b);
  }
  box.hidden = examples.length === 0;
}
