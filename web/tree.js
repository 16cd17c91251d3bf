// The branches of one run: every time the reader rewrites from an earlier token, the text
// so far is kept as a branch and a new one starts at that token. A branch holds the token
// messages (protocol.md) from token 1; branches share their first `fork` tokens with their
// parent. Plain data, no DOM.

export class BranchTree {
  constructor() {
    this.branches = [];
    this.current = this.add(null, 0, []);
  }

  add(parent, fork, steps) {
    const b = { n: this.branches.length + 1, parent, fork, steps, upcoming: null, done: false, reason: null };
    this.branches.push(b);
    return b;
  }

  /** A new branch that keeps the current one's first `index` tokens; it becomes current. */
  fork(index) {
    const from = this.current;
    this.current = this.add(from, index, from.steps.slice(0, index));
    return this.current;
  }

  get(n) {
    return this.branches.find((b) => b.n === n) ?? null;
  }

  children(b) {
    return this.branches.filter((c) => c.parent === b);
  }

  static ids(b) {
    return b.steps.map((s) => s.token_id);
  }

  /** How many first tokens branches `a` and `b` share. */
  static shared(a, b) {
    const x = BranchTree.ids(a);
    const y = BranchTree.ids(b);
    let i = 0;
    while (i < x.length && i < y.length && x[i] === y[i]) i += 1;
    return i;
  }
}
