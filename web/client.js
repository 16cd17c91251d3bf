// The page's side of the worker protocol (protocol.md): one worker per page, shared by
// every widget; each request gets a unique id and its own message handler.

const clients = new Map();  // worker URL -> GPT2Client

export class GPT2Client {
  /** The page's one client for the worker at `workerURL` (default: next to this file). */
  static shared(workerURL = new URL("worker.js", import.meta.url)) {
    const key = String(workerURL);
    if (!clients.has(key)) clients.set(key, new GPT2Client(key));
    return clients.get(key);
  }

  constructor(workerURL) {
    this.handlers = new Map();  // request id -> function(message)
    this.counter = 0;
    this.worker = new Worker(workerURL, { type: "module" });
    this.worker.onmessage = ({ data }) => {
      const handler = this.handlers.get(data.id);
      if (["done", "error", "ready", "next", "stats"].includes(data.type)) {
        this.handlers.delete(data.id);  // final answers; a step session's id is re-registered per step
      }
      handler?.(data);
    };
    // The worker script itself failed (missing file, syntax error): tell every request.
    this.worker.onerror = (event) => {
      event.preventDefault?.();
      const message = `the model worker failed to start (${event.message || "could not load worker.js"})`;
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
    if (onMessage) this.handlers.set(id, onMessage);
    this.worker.postMessage({ ...message, id });
    return id;
  }

  stop(id) {
    this.worker.postMessage({ type: "stop", id });
  }
}
