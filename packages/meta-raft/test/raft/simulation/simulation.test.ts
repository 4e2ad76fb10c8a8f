// The seeded simulation. CI runs a fixed set of seeds; RAFT_SIM_SEEDS=N (with RAFT_SIM_START=S)
// runs N seeds from S, and RAFT_SIM_SEED=X replays one seed. `npm run simulate -- --seeds N` at the
// repository root sets these.
import { describe, expect, it } from 'vitest';
import type { SimulationResult } from './simulation.js';
import { runSimulation, simulationOptions } from './simulation.js';

const CI_SEEDS = Array.from({ length: 200 }, (_, i) => i + 1);

function seeds(): number[] {
  const one = process.env.RAFT_SIM_SEED;
  if (one !== undefined && one !== '') return [Number(one)];
  const count = process.env.RAFT_SIM_SEEDS;
  if (count !== undefined && count !== '') {
    const start = Number(process.env.RAFT_SIM_START ?? 1);
    return Array.from({ length: Number(count) }, (_, i) => start + i);
  }
  return CI_SEEDS;
}

const summary = (r: SimulationResult): string =>
  `seed ${r.seed}: ${r.events} events, ${r.virtualMs} virtual ms, ${r.writes} writes, ${r.reads} reads, ` +
  `${r.unknown} unknown, ${r.leaders} leader terms, ${r.crashes} crashes, ${r.membershipChanges} membership changes, ` +
  `${r.snapshotsSent} snapshots sent`;

describe('raft simulation', () => {
  const all = seeds();
  const verbose = process.env.RAFT_SIM_VERBOSE === '1' || all.length === 1;
  // Seeds in groups, so a failure names its group and progress shows.
  const size = 4;
  for (let at = 0; at < all.length; at += size) {
    const group = all.slice(at, at + size);
    it(`seeds ${group[0]}..${group[group.length - 1]}`, { timeout: 600_000 }, () => {
      for (const seed of group) {
        const result = runSimulation(simulationOptions(seed));
        if (verbose) console.log(summary(result));
        expect(result.writes).toBeGreaterThan(0);
        expect(result.leaders).toBeGreaterThan(0);
      }
    });
  }

  it('replays a seed exactly', () => {
    const first = runSimulation(simulationOptions(7, { chaosMs: 3_000 }));
    const second = runSimulation(simulationOptions(7, { chaosMs: 3_000 }));
    expect(second).toEqual(first);
  });
});
