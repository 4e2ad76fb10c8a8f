// The ledger of one flow of messages in the crash test.

/** What was sent, acknowledged and received on one flow. */
export function book() {
  let sent = 0;
  const acked = new Set();
  const got = new Map();
  return {
    acked,
    next: () => String(sent++),
    got: (value) => got.set(value, (got.get(value) ?? 0) + 1),
    missing: () => [...acked].filter((value) => !got.has(value)),
    report() {
      const missing = this.missing().sort((a, b) => a - b);
      const twice = [...got.values()].filter((times) => times > 1).length;
      return { sent, acked: acked.size, missing: missing.length, firstMissing: missing.slice(0, 20), twice };
    },
  };
}
