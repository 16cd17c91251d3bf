// The interface's words in English and Simplified Chinese, for the page and the widget.
// Only the interface is translated: tokens, prompts and the engine's own messages are shown
// as they are. A value is a string with {name} placeholders, or a function of the values.

const en = {};
const zh = {};
export const STRINGS = { en, "zh-CN": zh };
export const LANGUAGES = [["en", "English"], ["zh-CN", "简体中文"]];

/** "zh-CN" for any Chinese in the list (navigator.languages), else "en". */
export function pickLanguage(languages = globalThis.navigator?.languages ?? []) {
  for (const l of languages) {
    const low = String(l).toLowerCase();
    if (low.startsWith("zh")) return "zh-CN";
    if (low.startsWith("en")) return "en";
  }
  return "en";
}

/** The supported language closest to `lang` (an attribute's value), or null. */
export function normalizeLanguage(lang) {
  if (!lang) return null;
  const low = String(lang).toLowerCase();
  if (low.startsWith("zh")) return "zh-CN";
  if (low.startsWith("en")) return "en";
  return null;
}

let current = pickLanguage();
export const getLanguage = () => current;
export function setLanguage(lang) {
  current = normalizeLanguage(lang) ?? "en";
  return current;
}

/** The text of `key` in `lang` (default: the current language), with `vars` filled in. */
export function t(key, vars = {}, lang = current) {
  const table = STRINGS[lang] ?? en;
  const v = table[key] ?? en[key];
  if (v === undefined) return key;
  if (typeof v === "function") return v(vars);
  return v.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

// ---------------------------------------------------------------- English

Object.assign(en, {
  "page.title": "gpt2web: watch a language model pick the next token",
  "page.h1": "Watch a language model pick the next token",
  "page.lede": "The model runs entirely in your browser. For every token it writes, you see the candidates it weighed: their probability under the model, and their share once temperature, top-k and top-p have had their say.",
  "lang.label": "Language",
  "examples.label": "Try:",
  "examples.use": "example prompt: {prompt}",
});

// ---------------------------------------------------------------- 简体中文

Object.assign(zh, {
  "page.title": "gpt2web：看语言模型如何挑选下一个词元",
  "page.h1": "看语言模型如何挑选下一个词元",
  "page.lede": "模型完全在你的浏览器里运行。它每写一个词元，你都能看到它权衡过的候选：模型给出的概率，以及经过温度、top-k 和 top-p 调整后的占比。",
  "lang.label": "语言",
  "examples.label": "试试：",
  "examples.use": "示例提示词：{prompt}",
});
