// A linearizability checker for key-value histories: each key is a register (linearizability is
// local, so keys are checked one by one), searched Wing-Gong style with Lowe's memoization of
// (linearized set, state) pairs, as Porcupine does.

/** One client operation on a register: a write of a unique value, or a read and what it saw. */
export interface RegisterOp {
  kind: 'write' | 'read';
  key: string;
  /** Written value, or the value the read returned (null: absent). */
  value: string | null;
  /** Virtual time the client called. */
  call: number;
  /** Virtual time the client got the answer; Infinity when it never did (outcome unknown). */
  ret: number;
  /** For failure reports. */
  label: string;
}

interface Node {
  op: RegisterOp | null;
  id: number;
  isCall: boolean;
  /** For a call: its return node. */
  match: Node | null;
  prev: Node | null;
  next: Node | null;
}

export interface LinearizabilityResult {
  ok: boolean;
  /** When not ok: the key whose history has no linearization. */
  key?: string;
  ops?: RegisterOp[];
}

/** Checks every key's history; stops at the first key without a linearization. */
export function checkLinearizable(ops: readonly RegisterOp[]): LinearizabilityResult {
  const byKey = new Map<string, RegisterOp[]>();
  for (const op of ops) {
    const list = byKey.get(op.key) ?? [];
    list.push(op);
    byKey.set(op.key, list);
  }
  for (const [key, list] of [...byKey].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!checkRegister(list)) return { ok: false, key, ops: list };
  }
  return { ok: true };
}

/** Whether one register's history (initially absent) is linearizable. */
export function checkRegister(ops: readonly RegisterOp[]): boolean {
  // Events in time order; at equal times calls come first, so touching operations count as
  // concurrent (the permissive reading: never a false alarm).
  const events: { time: number; isCall: boolean; index: number }[] = [];
  ops.forEach((op, index) => {
    events.push({ time: op.call, isCall: true, index });
    events.push({ time: op.ret, isCall: false, index });
  });
  events.sort((a, b) => a.time - b.time || Number(b.isCall) - Number(a.isCall) || a.index - b.index);

  const head: Node = { op: null, id: -1, isCall: false, match: null, prev: null, next: null };
  const calls: Node[] = [];
  const returns: Node[] = [];
  let tail = head;
  for (const event of events) {
    const node: Node = {
      op: ops[event.index]!,
      id: event.index,
      isCall: event.isCall,
      match: null,
      prev: tail,
      next: null,
    };
    tail.next = node;
    tail = node;
    (event.isCall ? calls : returns)[event.index] = node;
  }
  for (let i = 0; i < ops.length; i++) calls[i]!.match = returns[i]!;

  const lift = (call: Node): void => {
    call.prev!.next = call.next;
    if (call.next !== null) call.next.prev = call.prev;
    const ret = call.match!;
    ret.prev!.next = ret.next;
    if (ret.next !== null) ret.next.prev = ret.prev;
  };
  const unlift = (call: Node): void => {
    const ret = call.match!;
    ret.prev!.next = ret;
    if (ret.next !== null) ret.next.prev = ret;
    call.prev!.next = call;
    if (call.next !== null) call.next.prev = call;
  };

  let state: string | null = null;
  let linearized = 0n;
  const seen = new Set<string>();
  const stack: { call: Node; state: string | null }[] = [];
  let entry = head.next;
  while (head.next !== null) {
    if (entry !== null && entry.isCall) {
      const op = entry.op!;
      const fits = op.kind === 'write' || op.value === state;
      if (fits) {
        const nextState: string | null = op.kind === 'write' ? op.value : state;
        const nextLinearized = linearized | (1n << BigInt(entry.id));
        const key = `${nextLinearized.toString(36)}|${nextState ?? '\u0000'}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ call: entry, state });
          state = nextState;
          linearized = nextLinearized;
          lift(entry);
          entry = head.next;
          continue;
        }
      }
      entry = entry.next;
    } else {
      // A return whose call is not linearized yet: undo the last choice and try the next one.
      const top = stack.pop();
      if (top === undefined) return false;
      state = top.state;
      linearized &= ~(1n << BigInt(top.call.id));
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return true;
}
