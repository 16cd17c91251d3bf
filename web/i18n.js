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

const plural = (n, one, many) => (n === 1 ? one : many);

Object.assign(en, {
  "page.title": "gpt2web: watch a language model pick the next token",
  "page.h1": "Watch a language model pick the next token",
  "page.lede": "The model runs entirely in your browser. For every token it writes, you see the candidates it weighed: their probability under the model, and their share once temperature, top-k and top-p have had their say.",
  "lang.label": "Language",
  "compose.title": "Prompt and controls",
  "prompt.label": "Prompt",
  "prompt.hint": "Ctrl+Enter generates, Esc stops. Step shows the candidates for the next token: pick one, or press Step again to let the sampler pick.",
  "examples.label": "Try:",
  "examples.use": "example prompt: {prompt}",
  "button.generate": "Generate",
  "button.stop": "Stop",
  "button.step": "Step",
  "settings.legend": "Settings",
  "settings.model": "Model",
  "settings.modelLoading": "loading the list…",
  "settings.temperature": "Temperature",
  "settings.temperatureHint": "0 = always the top token",
  "settings.topK": "Top-k",
  "settings.topKHint": "0 = no limit",
  "settings.topP": "Top-p",
  "settings.topPHint": "1 = no limit",
  "settings.seed": "Seed",
  "settings.seedPlaceholder": "random",
  "settings.seedHint": "same seed, same text",
  "settings.maxTokens": "Max tokens",
  "settings.summary": "Settings: ",
  "output.title": "Output",
  "output.tokens": "Tokens",
  "output.tokensHint": "— click one to see what else it could have been, or to rewrite from there",
  "output.spaceBefore": "A dot marks a space inside a token:",
  "output.spaceAfter": "(with a space) is another token than",
  "legend.model": "probability under the model",
  "legend.share": "share after temperature, top-k, top-p",
  "loading.title": "Loading",
  "cand.title": "Candidates",
  "cand.start": "Generate or Step to see the candidates for each next token.",
  "cand.waiting": "Waiting for the first token…",
  "cand.none": "No candidates: see the message above.",
  "cand.yourPick": "Token {n}: your pick",
  "cand.pickNote": "Click a candidate (or move with the arrow keys and press Enter) to append it, or press Step to let the sampler choose.",
  "cand.token": "Token {n}: ",
  "cand.chosenNote": "Chosen with {p} under the model (rank {rank}), {share} after the settings.",
  "cand.rewrite": "rewrite from here",
  "cand.rewriteLabel": "rewrite from token {n}",
  "cand.rewriteNote": "Pick another token for position {n}: the text goes on from there, and the text so far is kept as a branch.",
  "cand.rewriteWith": "rewrite with {token}",
  "cand.cancel": "cancel",
  "cand.latest": "show the latest",
  "cand.append": "append {token}",
  "cand.other": "other tokens: {p}",
  "cand.chosen": "chosen",
  "cand.excluded": "excluded",
  "cand.underModel": "{p} under the model",
  "cand.shareTitle": "share after temperature, top-k, top-p",
  "cand.excludedTitle": "top-k / top-p leave it out",
  "cand.outside": "Chosen, outside the top candidates:",
  "cand.outsideLabel": "the chosen token, outside the top candidates",
  "chip.label": "token {n}: {token}, id {id}",
  "status.starting": "Starting Python in the background…",
  "status.noList": "No model list.",
  "status.noModels": "No models.",
  "status.loading": "Loading {model}…",
  "status.couldNotLoad": "Could not load {model}.",
  "status.nothingRan": "Nothing ran: fix the problem shown under the buttons.",
  "status.promptProblem": "Nothing ran: the prompt needs a change (see above).",
  "status.failed": "Generation failed.",
  "status.generating0": "Generating…",
  "status.stepping0": "Stepping: waiting for the candidates of token 1…",
  "status.firstPick": "Stepping: pick token 1, or press Step to let the sampler pick.",
  "status.generating": ({ n }) => `Generating: ${n} ${plural(n, "token", "tokens")}`,
  "status.stepping": ({ n }) => `Stepping: ${n} ${plural(n, "token", "tokens")}`,
  "status.rate": ", {rate} tokens/s",
  "status.seed": " · seed {seed}",
  "status.seedEnd": ". Seed {seed}.",
  "status.done": ({ n }) => `Done: ${n} ${plural(n, "token", "tokens")}`,
  "status.stopped": ({ n }) => `Stopped: ${n} ${plural(n, "token", "tokens")}`,
  "status.rewriting": "Rewriting from token {n}…",
  "status.fromLink": ({ n }) => `Rebuilding the linked text: ${n} ${plural(n, "token", "tokens")}…`,
  "status.ready": "Ready: {name} ({layers} layers, {dims} dimensions, {ctx} tokens of context, {backend}).",
  "status.loadedIn": " Loaded in {s} s.",
  "models.noList": "no model list",
  "models.none": "no models",
  "models.listFailed": "could not list the models (models.json): {message}",
  "models.empty": "this server has no models: convert one into weights/ (gpt2web convert)",
  "branch.title": "Branches",
  "branch.name": "Branch {n}",
  "branch.from": "from token {n}:",
  "branch.tokens": ({ n }) => `${n} ${plural(n, "token", "tokens")}`,
  "branch.compare": "compare",
  "branch.compareLabel": "compare branch {n} with branch {m}",
  "compare.caption": "Branches {a} and {b}, from token {n}, where they part",
  "compare.position": "token",
  "compare.cellTitle": "{p} under the model (rank {rank})",
  "compare.note": "Mean log-probability per token from there: branch {a} {pa}, branch {b} {pb} (closer to 0: the model found it likelier).",
  "compare.close": "close the comparison",
  "link.label": "Link to this text",
  "link.copy": "Copy link",
  "link.note": "Opens this text with the same tokens and the same bars, in any browser.",
  "link.copied": "Link copied: it opens this text with the same tokens and the same bars.",
  "link.copyByHand": "The browser did not allow copying: the link is selected, copy it with Ctrl+C.",
  "link.unreadable": "this link's fragment is not a gpt2web link; starting afresh",
  "link.version": "this link was made by another version of gpt2web (v={v}); starting afresh",
  "link.model": "this link asks for the model \"{model}\", which this server does not have; starting afresh",
  "link.setting": "this link has a bad setting ({problem}); starting afresh",
  "link.ids": "this link's tokens are not a list of token ids; starting afresh",
  "link.tooMany": "this link has more tokens than its max tokens allows; starting afresh",
  "link.failed": "this link could not be rebuilt ({message}); the page starts afresh",
  "error.prompt": "Prompt problem",
  "error.params": "Setting problem",
  "error.shard": "Model file problem",
  "error.runtime": "The Python runtime failed",
  "error.memory": "Out of memory",
  "error.link": "Link problem",
  "error.other": "Error",
  "reason.eot": "the model wrote <|endoftext|>",
  "reason.max_tokens": "max tokens reached",
  "reason.context_full": "the context window is full",
  "reason.evicted": "too many step sessions were open",
  "check.model": "No model is selected (the server lists none).",
  "check.prompt": "The prompt is empty: type some text to continue.",
  "check.number": "{name} must be a number.",
  "check.temperature": "Temperature must be between 0 and 10 (0 = greedy).",
  "check.topK": "Top-k must be a whole number ≥ 0 (0 = no limit).",
  "check.topP": "Top-p must be more than 0 and at most 1 (1 = no limit).",
  "check.seed": "Seed must be a whole number from 0 to 2^63−1, or empty for a random one.",
  "check.maxTokens": "Max tokens must be a whole number from 1 to {max}.",
});

// ---------------------------------------------------------------- 简体中文

Object.assign(zh, {
  "page.title": "gpt2web：看语言模型如何挑选下一个词元",
  "page.h1": "看语言模型如何挑选下一个词元",
  "page.lede": "模型完全在你的浏览器里运行。它每写一个词元，你都能看到它权衡过的候选：模型给出的概率，以及经过温度、top-k 和 top-p 调整后的占比。",
  "lang.label": "语言",
  "compose.title": "提示词与按钮",
  "prompt.label": "提示词",
  "prompt.hint": "Ctrl+Enter 生成，Esc 停止。“单步”先显示下一个词元的候选：选一个，或再按一次“单步”让采样器来选。",
  "examples.label": "试试：",
  "examples.use": "示例提示词：{prompt}",
  "button.generate": "生成",
  "button.stop": "停止",
  "button.step": "单步",
  "settings.legend": "设置",
  "settings.model": "模型",
  "settings.modelLoading": "正在加载列表…",
  "settings.temperature": "温度",
  "settings.temperatureHint": "0 = 总是选最可能的词元",
  "settings.topK": "Top-k",
  "settings.topKHint": "0 = 不限",
  "settings.topP": "Top-p",
  "settings.topPHint": "1 = 不限",
  "settings.seed": "随机种子",
  "settings.seedPlaceholder": "随机",
  "settings.seedHint": "同一种子，同一文本",
  "settings.maxTokens": "最多词元数",
  "settings.summary": "设置：",
  "output.title": "输出",
  "output.tokens": "词元",
  "output.tokensHint": "— 点击一个词元，看看它本可以是什么，或从那里改写",
  "output.spaceBefore": "圆点表示词元里的空格：",
  "output.spaceAfter": "（带空格）和下面这个是不同的词元：",
  "legend.model": "模型给出的概率",
  "legend.share": "经温度、top-k、top-p 调整后的占比",
  "loading.title": "加载",
  "cand.title": "候选",
  "cand.start": "按“生成”或“单步”查看每个下一个词元的候选。",
  "cand.waiting": "正在等待第一个词元…",
  "cand.none": "没有候选：请看上面的提示。",
  "cand.yourPick": "第 {n} 个词元：由你来选",
  "cand.pickNote": "点击一个候选（或用方向键移动、按 Enter）把它接上，或按“单步”让采样器来选。",
  "cand.token": "第 {n} 个词元：",
  "cand.chosenNote": "被选中：模型概率 {p}（排名 {rank}），按设置调整后占比 {share}。",
  "cand.rewrite": "从这里改写",
  "cand.rewriteLabel": "从第 {n} 个词元改写",
  "cand.rewriteNote": "为第 {n} 个位置另选一个词元：文本会从那里继续，原来的文本保留为一个分支。",
  "cand.rewriteWith": "改写为 {token}",
  "cand.cancel": "取消",
  "cand.latest": "显示最新的",
  "cand.append": "接上 {token}",
  "cand.other": "其他词元：{p}",
  "cand.chosen": "已选",
  "cand.excluded": "已排除",
  "cand.underModel": "模型概率 {p}",
  "cand.shareTitle": "经温度、top-k、top-p 调整后的占比",
  "cand.excludedTitle": "被 top-k / top-p 排除",
  "cand.outside": "被选中，但不在前几名候选中：",
  "cand.outsideLabel": "被选中但不在前几名候选中的词元",
  "chip.label": "第 {n} 个词元：{token}，编号 {id}",
  "status.starting": "正在后台启动 Python…",
  "status.noList": "没有模型列表。",
  "status.noModels": "没有模型。",
  "status.loading": "正在加载 {model}…",
  "status.couldNotLoad": "无法加载 {model}。",
  "status.nothingRan": "没有运行：请先修正按钮下方提示的问题。",
  "status.promptProblem": "没有运行：提示词需要修改（见上方）。",
  "status.failed": "生成失败。",
  "status.generating0": "正在生成…",
  "status.stepping0": "单步：正在等待第 1 个词元的候选…",
  "status.firstPick": "单步：请选第 1 个词元，或按“单步”让采样器来选。",
  "status.generating": ({ n }) => `正在生成：${n} 个词元`,
  "status.stepping": ({ n }) => `单步：${n} 个词元`,
  "status.rate": "，每秒 {rate} 个词元",
  "status.seed": " · 种子 {seed}",
  "status.seedEnd": "。种子 {seed}。",
  "status.done": ({ n }) => `完成：${n} 个词元`,
  "status.stopped": ({ n }) => `已停止：${n} 个词元`,
  "status.rewriting": "正在从第 {n} 个词元改写…",
  "status.fromLink": ({ n }) => `正在重建链接中的文本：${n} 个词元…`,
  "status.ready": "就绪：{name}（{layers} 层，{dims} 维，上下文 {ctx} 个词元，{backend}）。",
  "status.loadedIn": "加载用时 {s} 秒。",
  "models.noList": "没有模型列表",
  "models.none": "没有模型",
  "models.listFailed": "无法获取模型列表（models.json）：{message}",
  "models.empty": "这个服务器上没有模型：请先转换一个到 weights/（gpt2web convert）",
  "branch.title": "分支",
  "branch.name": "分支 {n}",
  "branch.from": "自第 {n} 个词元：",
  "branch.tokens": ({ n }) => `${n} 个词元`,
  "branch.compare": "对比",
  "branch.compareLabel": "对比分支 {n} 和分支 {m}",
  "compare.caption": "分支 {a} 与分支 {b}，从第 {n} 个词元（分岔处）起",
  "compare.position": "词元",
  "compare.cellTitle": "模型概率 {p}（排名 {rank}）",
  "compare.note": "从分岔处起每个词元的平均对数概率：分支 {a} 为 {pa}，分支 {b} 为 {pb}（越接近 0，模型越认为它可能）。",
  "compare.close": "关闭对比",
  "link.label": "这段文本的链接",
  "link.copy": "复制链接",
  "link.note": "在任何浏览器中打开，都会得到同样的词元和同样的概率条。",
  "link.copied": "链接已复制：打开它会得到同样的词元和同样的概率条。",
  "link.copyByHand": "浏览器不允许复制：链接已选中，请按 Ctrl+C 复制。",
  "link.unreadable": "这个链接的片段不是 gpt2web 链接；页面重新开始",
  "link.version": "这个链接来自另一个版本的 gpt2web（v={v}）；页面重新开始",
  "link.model": "这个链接要求的模型“{model}”在本服务器上不存在；页面重新开始",
  "link.setting": "这个链接的设置有误（{problem}）；页面重新开始",
  "link.ids": "这个链接里的词元不是词元编号列表；页面重新开始",
  "link.tooMany": "这个链接的词元数超过了它的最多词元数；页面重新开始",
  "link.failed": "无法重建这个链接（{message}）；页面重新开始",
  "error.prompt": "提示词有问题",
  "error.params": "设置有问题",
  "error.shard": "模型文件有问题",
  "error.runtime": "Python 运行环境出错",
  "error.memory": "内存不足",
  "error.link": "链接有问题",
  "error.other": "错误",
  "reason.eot": "模型写出了 <|endoftext|>",
  "reason.max_tokens": "达到最多词元数",
  "reason.context_full": "上下文窗口已满",
  "reason.evicted": "打开的单步会话太多",
  "check.model": "没有选中模型（服务器没有列出任何模型）。",
  "check.prompt": "提示词是空的：请输入一些文字再继续。",
  "check.number": "{name}必须是一个数。",
  "check.temperature": "温度必须在 0 到 10 之间（0 = 贪心）。",
  "check.topK": "Top-k 必须是 ≥ 0 的整数（0 = 不限）。",
  "check.topP": "Top-p 必须大于 0 且不超过 1（1 = 不限）。",
  "check.seed": "随机种子必须是 0 到 2^63−1 之间的整数，留空则随机。",
  "check.maxTokens": "最多词元数必须是 1 到 {max} 之间的整数。",
});

/** Fill every [data-i18n] element under `root` (and [data-i18n-placeholder] placeholders). */
export function applyStatic(root = document, lang = current) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n, {}, lang);
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder, {}, lang);
  }
}
