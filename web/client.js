// The page's side of the worker protocol (protocol.md): one worker per page, shared by
// every widget; each request gets a unique id and its own message handler.

const clients = new Map();  // worker URL -> GPT2Client

/**
 * A module worker running `url`. Browsers refuse `new Worker(url)` for a URL on another
 * origin than the page (a widget embedded from the gpt2web server): then the worker starts
 * from a same-origin blob that imports the real worker.js. Inside it, `import.meta.url` is
 * still worker.js's real URL, so the runtime, wheels and weights come from the gpt2web
 * server (which allows any origin, CORS `*`).
 */
export function startWorker(url) {
  const real = new URL(url, location.href);
  if (real.origin === location.origin) return new Worker(real, { type: "module" });
  const source = `import ${JSON.stringify(real.href)};\n`;
  const blob = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  return new Worker(blob, { type: "module" });  // the blob stays: a few bytes, one per page
}

export class GPT2Client {
  /** The page's one client for the worker at `workerURL` (default: next to this file). */
  static shared(workerURL = new URL("worker.js", import.meta.url)) {
    const key = new URL(workerURL, location.href).href;
    if (!clients.has(key)) clients.set(key, new GPT2Client(key));
    return clients.get(key);
  }

  constructor(workerURL) {
    this.url = String(workerURL);
    this.handlers = new Map();  // request id -> function(message)
    this.counter = 0;
    this.failed = null;  // why the worker could not start: later requests get it at once
    this.heard = false;  // whether the worker has answered anything yet (then it is running)
    this.worker = startWorker(workerURL);
    this.worker.onmessage = ({ data }) => {
      this.heard = true;
      const handler = this.handlers.get(data.id);
      if (["done", "error", "ready", "next", "stats", "explain", "score"].includes(data.type)) {
        this.handlers.delete(data.id);  // final answers; a step session's id is re-registered per step
      }
      handler?.(data);
    };
    // The worker script itself failed (missing file, syntax error): tell every request.
    this.worker.onerror = (event) => {
      event.preventDefault?.();
      const message = `the model worker failed to start (${event.message || `could not load ${this.url}`})`;
      if (!this.heard) this.failed = message;  // it never started: nothing will ever answer
      this.failAll(message);
    };
    this.worker.onmessageerror = () => this.failAll("a message from the model worker could not be read");
  }

  failAll(message) {
    const handlers = [...this.handlers];
    this.handlers.clear();
    for (const [id, handler] of handlers) handler({ type: "error", id, kind: "runtime", message });
  }

  newId(prefix = "r") {
    this.counter += 1;
    return `${prefix}${this.counter}`;
  }

  /** Send `message` (given an id if it has none); `onMessage` gets every answer for it. */
  send(message, onMessage) {
    const id = message.id ?? this.newId();
    if (this.failed) {  // a dead worker never answers: say so instead of waiting forever
      const failure = { type: "error", id, kind: "runtime", message: this.failed };
      if (onMessage) queueMicrotask(() => onMessage(failure));
      return id;
    }
    if (onMessage) this.handlers.set(id, onMessage);
    this.worker.postMessage({ ...message, id });
    return id;
  }

  stop(id) {
    this.worker.postMessage({ type: "stop", id });
  }
}
