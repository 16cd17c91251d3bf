// No UI: `gpt2web bench` (py/gpt2web/host/bench.py) drives bench.js through Playwright.
import * as bench from "./bench.js";
window.bench = bench;
document.documentElement.dataset.ready = "true";
