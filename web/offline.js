// Offline use: once a model is ready, the service worker (sw.js) is registered for this folder
// and keeps the app and its runtime; the page keeps the models a reader used (download.js).
// A revisit then works with the network off. The control (#offline, on the page) says what is
// kept and how much space it takes, and clears it.
//
// The service worker's URL carries the version of offline.json (sw.js?v=...): a new version of
// the app on the server means a new service worker, which keeps the new files alongside the old
// ones and takes over when the reader asks for it (or the last tab of the old version is closed).

import { SHARD_CACHE } from "./download.js";
import { formatBytes } from "./progress.js";

const BASE = new URL("./", import.meta.url);
const APP_PREFIX = `gpt2web-app ${BASE.href} `;
const DATA_CACHE = `gpt2web-data ${BASE.href}`;

/** Why offline use is not available here, or null. */
function unavailable() {
  if (BASE.origin !== location.origin) return "the app is served from another site";
  if (!globalThis.isSecureContext || !("serviceWorker" in navigator)) {
    return "this browser keeps pages for offline use only over https or on localhost";
  }
  if (!globalThis.caches) return "this browser offers no Cache Storage here";
  return null;
}

// States of the page's #status once a model has loaded (a Generate pressed early skips "ready").
const LOADED = new Set(["ready", "done", "stopped"]);

/** Resolves when the page (#status) or a widget (gpt2-ready) has a model ready. */
function modelReady() {
  return new Promise((resolve) => {
    document.addEventListener("gpt2-ready", resolve, { once: true });
    const status = document.getElementById("status");
    if (!status) return;
    const check = () => LOADED.has(status.dataset.state) && resolve();
    new MutationObserver(check).observe(status, { attributes: true, attributeFilter: ["data-state"] });
    check();
  });
}

/** The app's version on the server (offline.json), or null when it cannot be asked (offline). */
async function serverVersion() {
  try {
    const resp = await fetch(new URL("offline.json", BASE), { cache: "no-store" });
    return resp.ok ? (await resp.json()).version ?? null : null;
  } catch {
    return null;
  }
}

/** Register sw.js?v=VERSION for this folder; resolves to the registration (or null). */
export async function keepOffline() {
  if (unavailable()) return null;
  const version = await serverVersion();
  if (!version) return navigator.serviceWorker.getRegistration(BASE.href).catch(() => null);
  const url = new URL(`sw.js?v=${encodeURIComponent(version)}`, BASE);
  return navigator.serviceWorker.register(url, { scope: BASE.href });
}

/** What is kept for this folder: {app: bytes or 0, installing, models: [{name, bytes}], total}. */
export async function keptHere() {
  const out = { app: 0, version: null, models: [], total: 0 };
  const registration = await navigator.serviceWorker?.getRegistration(BASE.href).catch(() => null);
  const active = registration?.active && new URL(registration.active.scriptURL).searchParams.get("v");
  for (const name of await caches.keys()) {
    if (!name.startsWith(APP_PREFIX) || name.slice(APP_PREFIX.length) !== active) continue;
    const listing = await caches.match(new URL("offline.json", BASE).href, { cacheName: name });
    if (!listing) continue;  // not complete
    out.version = active;
    out.app = (await listing.json()).files.reduce((sum, f) => sum + f.bytes, 0);
  }
  const models = new Map();  // folder under weights/ (or the vocabulary) -> bytes
  const cache = await caches.open(SHARD_CACHE);
  const weights = new URL("weights/", BASE).href;
  for (const request of await cache.keys()) {
    if (!request.url.startsWith(weights)) continue;
    const rel = request.url.slice(weights.length).split("?")[0];
    const name = rel.includes("/") ? rel.split("/")[0] : "the vocabulary";
    const resp = await cache.match(request);
    const bytes = Number(resp?.headers.get("content-length")) || (await resp.arrayBuffer()).byteLength;
    models.set(name, (models.get(name) ?? 0) + bytes);
  }
  out.models = [...models].map(([name, bytes]) => ({ name, bytes }));
  out.total = out.app + out.models.reduce((sum, m) => sum + m.bytes, 0);
  return out;
}

/** Forget everything kept for this folder: the service worker, the app, the models. */
export async function clearKept() {
  const registration = await navigator.serviceWorker?.getRegistration(BASE.href).catch(() => null);
  if (registration && registration.scope === BASE.href) await registration.unregister();
  for (const name of await caches.keys()) {
    if (name.startsWith(APP_PREFIX) || name === DATA_CACHE) await caches.delete(name);
  }
  const cache = await caches.open(SHARD_CACHE);
  const weights = new URL("weights/", BASE).href;
  for (const request of await cache.keys()) {
    if (request.url.startsWith(weights)) await cache.delete(request);
  }
}

// ---------------------------------------------------------------- the control on the page

function describe(kept) {
  const parts = [];
  if (kept.app) parts.push(`the app and its runtime (${formatBytes(kept.app)})`);
  for (const m of kept.models) {
    parts.push(m.name === "the vocabulary" ? `the vocabulary (${formatBytes(m.bytes)})`
      : `model ${m.name} (${formatBytes(m.bytes)})`);
  }
  if (!parts.length) return "Nothing is kept on this device yet.";
  const usable = kept.app && kept.models.some((m) => m.name !== "the vocabulary") ? " It opens without a network." : "";
  return `Kept on this device: ${parts.join(", ")}; ${formatBytes(kept.total)} in all.${usable}`;
}

function mountControl(box) {
  const text = box.querySelector("#offline-text");
  const clear = box.querySelector("#offline-clear");
  const update = box.querySelector("#offline-update");
  box.hidden = false;
  const why = unavailable();
  if (why) {
    text.textContent = `Offline use is not available: ${why}.`;
    clear.hidden = true;
    return null;
  }
  let busy = null;
  const refresh = async (prefix = "") => {
    try {
      const kept = await keptHere();
      text.textContent = prefix + describe(kept);
      box.dataset.app = kept.app ? "kept" : "none";
      box.dataset.models = kept.models.filter((m) => m.name !== "the vocabulary").map((m) => m.name).join(" ");
      clear.disabled = !kept.total;
    } catch (e) {
      text.textContent = `Could not read what is kept (${e.message}).`;
    }
  };
  clear.addEventListener("click", async () => {
    clear.disabled = true;
    busy = clearKept().then(() => refresh("Cleared. "), (e) => {
      text.textContent = `Could not clear everything (${e.message}).`;
    });
    await busy;
  });
  update.addEventListener("click", async () => {
    const registration = await navigator.serviceWorker.getRegistration(BASE.href);
    if (!registration?.waiting) return;
    navigator.serviceWorker.addEventListener("controllerchange", () => location.reload(), { once: true });
    registration.waiting.postMessage({ type: "gpt2web-update" });
  });
  return {
    refresh,
    watch(registration) {
      const showUpdate = () => {
        // A new version waits behind the one serving this page.
        update.hidden = !(registration.waiting && registration.active);
      };
      const track = (worker) => worker?.addEventListener("statechange", () => {
        if (worker.state === "installing") return;
        if (worker.state === "redundant" && !registration.active) {
          text.textContent = "The app could not be kept for offline use (see the console); it will be tried again next visit.";
        }
        showUpdate();
        refresh();
      });
      track(registration.installing);
      registration.addEventListener("updatefound", () => {
        text.textContent = "Keeping the app for offline use…";
        track(registration.installing);
      });
      showUpdate();
    },
  };
}

const unsupported = unavailable();
const box = document.getElementById("offline");
const control = box ? mountControl(box) : null;
control?.refresh();
if (!unsupported) {
  modelReady().then(keepOffline).then((registration) => {
    if (!registration) return;
    control?.watch(registration);
    control?.refresh();
  }).catch((e) => console.info("gpt2web: the app is not kept for offline use:", e?.message ?? e));
  // A model kept by the page shows up once it is complete.
  document.addEventListener("gpt2-ready", () => control?.refresh());
  if (box) {
    const status = document.getElementById("status");
    if (status) new MutationObserver(() => LOADED.has(status.dataset.state) && control?.refresh())
      .observe(status, { attributes: true, attributeFilter: ["data-state"] });
  }
}
