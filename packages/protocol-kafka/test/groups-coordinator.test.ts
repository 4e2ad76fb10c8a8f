import { describe, expect, it } from 'vitest';
import { GroupCoordinator, type CoordinatorOptions } from '../src/groups/coordinator.js';
import { KafkaErrorCode as E } from '../src/codec/error-codes.js';
import type {
  GroupProtocol,
  JoinGroupInput,
  JoinGroupOutcome,
  SyncGroupOutcome,
} from '../src/groups/types.js';
import { ManualClock, settle } from './helpers/manual-clock.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const RANGE: GroupProtocol[] = [{ name: 'range', metadata: bytes('range-meta') }];

function setup(options: CoordinatorOptions = {}) {
  const clock = new ManualClock();
  const changes: { groupId: string; generationId: number }[] = [];
  const coordinator = new GroupCoordinator({
    clock,
    initialRebalanceDelayMs: 0,
    onGroupChange: (groupId, g) => {
      changes.push({ groupId, generationId: g.generationId });
    },
    ...options,
  });
  return { clock, coordinator, changes };
}

function joinInput(overrides: Partial<JoinGroupInput> = {}): JoinGroupInput {
  return {
    groupId: 'g',
    memberId: '',
    groupInstanceId: null,
    clientId: 'client',
    clientHost: '/127.0.0.1',
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    protocolType: 'consumer',
    protocols: RANGE,
    requireKnownMemberId: true,
    ...overrides,
  };
}

/** Tracks a promise so a test can see whether it has settled yet. */
function track<T>(promise: Promise<T>): { value: T | undefined; done: boolean } {
  const box: { value: T | undefined; done: boolean } = { value: undefined, done: false };
  void promise.then((v) => {
    box.value = v;
    box.done = true;
  });
  return box;
}

/** The two-step join of a new member (v4+): MEMBER_ID_REQUIRED, then the join that parks. */
async function joinNew(coordinator: GroupCoordinator, overrides: Partial<JoinGroupInput> = {}) {
  const first = await coordinator.joinGroup(joinInput(overrides));
  expect(first.errorCode).toBe(E.memberIdRequired);
  expect(first.memberId).toMatch(new RegExp(`^${overrides.clientId ?? 'client'}-`));
  return track(coordinator.joinGroup(joinInput({ ...overrides, memberId: first.memberId })));
}

/** A stable group of the given members, each joined and synced; returns their join outcomes. */
async function stableGroup(coordinator: GroupCoordinator, count: number): Promise<JoinGroupOutcome[]> {
  const joins = [];
  for (let i = 0; i < count; i++) joins.push(await joinNew(coordinator, { clientId: `client${i}` }));
  await settle();
  // With no initial delay the first member completes alone; the others force a second round.
  let outcomes = joins.map((j) => j.value);
  if (outcomes.some((o) => o === undefined)) {
    const rejoined = outcomes
      .filter((o): o is JoinGroupOutcome => o !== undefined)
      .map((o) => track(coordinator.joinGroup(joinInput({ memberId: o.memberId, clientId: 'client' }))));
    await settle();
    outcomes = joins.map((j, i) => j.value ?? rejoined[i]?.value);
    const latest = [...joins, ...rejoined].map((j) => j.value).filter((o): o is JoinGroupOutcome => !!o);
    const generation = Math.max(...latest.map((o) => o.generationId));
    outcomes = latest.filter((o) => o.generationId === generation);
  }
  expect(outcomes).toHaveLength(count);
  // The leader first, then the followers.
  const final = (outcomes as JoinGroupOutcome[]).sort(
    (x, y) => Number(y.memberId === y.leader) - Number(x.memberId === x.leader),
  );
  const leader = final.find((o) => o.memberId === o.leader)!;
  await coordinator.syncGroup({
    groupId: 'g',
    memberId: leader.memberId,
    groupInstanceId: null,
    generationId: leader.generationId,
    protocolType: null,
    protocolName: null,
    assignments: final.map((o) => ({ memberId: o.memberId, assignment: bytes(`for ${o.memberId}`) })),
  });
  return final;
}

describe('group coordinator: joining', () => {
  it('asks a new v4+ member for its id first, then completes the join as leader', async () => {
    const { coordinator, changes } = setup();
    const join = await joinNew(coordinator);
    await settle();
    expect(join.done).toBe(true);
    const outcome = join.value!;
    expect(outcome.errorCode).toBe(E.none);
    expect(outcome.generationId).toBe(1);
    expect(outcome.leader).toBe(outcome.memberId);
    expect(outcome.protocolName).toBe('range');
    expect(outcome.protocolType).toBe('consumer');
    expect(outcome.members).toEqual([
      { memberId: outcome.memberId, groupInstanceId: null, metadata: bytes('range-meta') },
    ]);
    expect(coordinator.state('g')).toBe('CompletingRebalance');
    // As in Kafka, a generation is persisted once it completes, with the leader's assignment.
    expect(changes).toEqual([]);
    await coordinator.syncGroup({
      groupId: 'g',
      memberId: outcome.memberId,
      groupInstanceId: null,
      generationId: 1,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    expect(changes).toEqual([{ groupId: 'g', generationId: 1 }]);
  });

  it('admits a member at once with JoinGroup below v4', async () => {
    const { coordinator } = setup();
    const outcome = await coordinator.joinGroup(joinInput({ requireKnownMemberId: false }));
    expect(outcome.errorCode).toBe(E.none);
    expect(outcome.memberId).toMatch(/^client-/);
    expect(outcome.generationId).toBe(1);
  });

  it('waits the initial rebalance delay for more members, extending it while they arrive', async () => {
    const { clock, coordinator } = setup({ initialRebalanceDelayMs: 3000 });
    const a = await joinNew(coordinator, { clientId: 'a' });
    await clock.advance(2000);
    const b = await joinNew(coordinator, { clientId: 'b' });
    await clock.advance(1500);
    expect(a.done).toBe(false); // a member arrived during the first delay: wait another one
    await clock.advance(3000);
    expect(a.done && b.done).toBe(true);
    expect(a.value!.generationId).toBe(1);
    expect(b.value!.generationId).toBe(1);
    expect(a.value!.leader).toBe(a.value!.memberId);
    expect(a.value!.members.map((m) => m.memberId)).toEqual([a.value!.memberId, b.value!.memberId]);
    expect(b.value!.members).toEqual([]);
  });

  it('rejects a session timeout outside the configured bounds', async () => {
    const { coordinator } = setup();
    expect((await coordinator.joinGroup(joinInput({ sessionTimeoutMs: 1000 }))).errorCode).toBe(
      E.invalidSessionTimeout,
    );
    expect((await coordinator.joinGroup(joinInput({ sessionTimeoutMs: 3_600_000 }))).errorCode).toBe(
      E.invalidSessionTimeout,
    );
  });

  it('rejects an empty group id, and a member id the group never gave out', async () => {
    const { coordinator } = setup();
    expect((await coordinator.joinGroup(joinInput({ groupId: '' }))).errorCode).toBe(E.invalidGroupId);
    expect((await coordinator.joinGroup(joinInput({ memberId: 'made-up' }))).errorCode).toBe(
      E.unknownMemberId,
    );
    await stableGroup(coordinator, 1);
    expect((await coordinator.joinGroup(joinInput({ memberId: 'made-up' }))).errorCode).toBe(
      E.unknownMemberId,
    );
  });

  it('requires a common protocol type and at least one protocol every member supports', async () => {
    const { coordinator } = setup();
    await stableGroup(coordinator, 1);
    const otherType = await coordinator.joinGroup(
      joinInput({ protocolType: 'connect', requireKnownMemberId: false }),
    );
    expect(otherType.errorCode).toBe(E.inconsistentGroupProtocol);
    const noCommon = await coordinator.joinGroup(
      joinInput({ protocols: [{ name: 'sticky', metadata: bytes('') }], requireKnownMemberId: false }),
    );
    expect(noCommon.errorCode).toBe(E.inconsistentGroupProtocol);
    const empty = await coordinator.joinGroup(joinInput({ groupId: 'h', protocols: [] }));
    expect(empty.errorCode).toBe(E.inconsistentGroupProtocol);
    expect(coordinator.has('h')).toBe(false);
  });

  it('selects the protocol the members prefer among those all of them support', async () => {
    const { clock, coordinator } = setup({ initialRebalanceDelayMs: 100 });
    const p = (...names: string[]) => names.map((name) => ({ name, metadata: bytes(name) }));
    const a = track(
      coordinator.joinGroup(
        joinInput({ protocols: p('sticky', 'range', 'roundrobin'), requireKnownMemberId: false }),
      ),
    );
    const b = track(
      coordinator.joinGroup(joinInput({ protocols: p('roundrobin', 'range'), requireKnownMemberId: false })),
    );
    const c = track(
      coordinator.joinGroup(
        joinInput({ protocols: p('roundrobin', 'range', 'sticky'), requireKnownMemberId: false }),
      ),
    );
    await clock.advance(1000);
    expect([a, b, c].every((x) => x.done)).toBe(true);
    // a cannot vote for sticky (b lacks it) so votes range; b and c vote roundrobin.
    expect(a.value!.protocolName).toBe('roundrobin');
    expect(a.value!.members.find((m) => m.memberId === b.value!.memberId)!.metadata).toEqual(
      bytes('roundrobin'),
    );
  });

  it('refuses new members beyond the maximum group size', async () => {
    const { coordinator } = setup({ maxGroupSize: 1 });
    await stableGroup(coordinator, 1);
    const outcome = await coordinator.joinGroup(joinInput({ requireKnownMemberId: false }));
    expect(outcome.errorCode).toBe(E.groupMaxSizeReached);
  });
});

describe('group coordinator: rebalancing', () => {
  it('rebalances when a member joins a stable group and hands the leader everyone', async () => {
    const { coordinator } = setup();
    const [first] = await stableGroup(coordinator, 1);
    expect(coordinator.state('g')).toBe('Stable');
    const second = await joinNew(coordinator, { clientId: 'second' });
    await settle();
    expect(coordinator.state('g')).toBe('PreparingRebalance');
    expect(second.done).toBe(false);
    const hb = coordinator.heartbeat({
      groupId: 'g',
      memberId: first!.memberId,
      groupInstanceId: null,
      generationId: 1,
    });
    expect(hb).toBe(E.rebalanceInProgress);
    const rejoin = track(coordinator.joinGroup(joinInput({ memberId: first!.memberId })));
    await settle();
    expect(rejoin.done && second.done).toBe(true);
    expect(rejoin.value!.generationId).toBe(2);
    expect(second.value!.generationId).toBe(2);
    expect(rejoin.value!.leader).toBe(first!.memberId);
    expect(rejoin.value!.members).toHaveLength(2);
    expect(second.value!.members).toHaveLength(0);

    // The follower's sync waits for the leader's.
    const followerSync = track(
      coordinator.syncGroup({
        groupId: 'g',
        memberId: second.value!.memberId,
        groupInstanceId: null,
        generationId: 2,
        protocolType: 'consumer',
        protocolName: 'range',
        assignments: [],
      }),
    );
    await settle();
    expect(followerSync.done).toBe(false);
    const leaderSync = await coordinator.syncGroup({
      groupId: 'g',
      memberId: first!.memberId,
      groupInstanceId: null,
      generationId: 2,
      protocolType: null,
      protocolName: null,
      assignments: [
        { memberId: first!.memberId, assignment: bytes('p0') },
        { memberId: second.value!.memberId, assignment: bytes('p1') },
      ],
    });
    await settle();
    expect(text(leaderSync.assignment)).toBe('p0');
    expect(followerSync.value!.errorCode).toBe(E.none);
    expect(text(followerSync.value!.assignment)).toBe('p1');
    expect(followerSync.value!.protocolName).toBe('range');
    expect(coordinator.state('g')).toBe('Stable');
  });

  it('gives members left out of the assignment empty bytes, and answers late syncs from the stored one', async () => {
    const { coordinator } = setup();
    const members = await stableGroup(coordinator, 2);
    const follower = members.find((m) => m.memberId !== m.leader)!;
    const late = await coordinator.syncGroup({
      groupId: 'g',
      memberId: follower.memberId,
      groupInstanceId: null,
      generationId: follower.generationId,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    expect(late.errorCode).toBe(E.none);
    expect(text(late.assignment)).toBe(`for ${follower.memberId}`);
  });

  it('removes members that do not rejoin within the rebalance timeout', async () => {
    const { clock, coordinator } = setup();
    const [a, b] = await stableGroup(coordinator, 2);
    const rejoin = track(
      coordinator.joinGroup(joinInput({ memberId: a!.memberId, rebalanceTimeoutMs: 20_000 })),
    );
    await settle();
    expect(rejoin.done).toBe(false);
    // b keeps heartbeating but never rejoins; the largest rebalance timeout (b's 30 s) rules.
    for (let t = 0; t < 5; t++) {
      await clock.advance(5000);
      expect(
        coordinator.heartbeat({
          groupId: 'g',
          memberId: b!.memberId,
          groupInstanceId: null,
          generationId: 2,
        }),
      ).toBe(E.rebalanceInProgress);
    }
    expect(rejoin.done).toBe(false);
    await clock.advance(5001);
    expect(rejoin.done).toBe(true);
    expect(rejoin.value!.generationId).toBe(3);
    expect(rejoin.value!.members.map((m) => m.memberId)).toEqual([a!.memberId]);
    expect(
      coordinator.heartbeat({ groupId: 'g', memberId: b!.memberId, groupInstanceId: null, generationId: 3 }),
    ).toBe(E.unknownMemberId);
  });

  it('expires a member whose heartbeats stop, rebalancing the rest', async () => {
    const { clock, coordinator } = setup();
    const [a, b] = await stableGroup(coordinator, 2);
    const hb = () =>
      coordinator.heartbeat({ groupId: 'g', memberId: a!.memberId, groupInstanceId: null, generationId: 2 });
    await clock.advance(4000);
    expect(hb()).toBe(E.none);
    await clock.advance(4000);
    expect(hb()).toBe(E.none);
    await clock.advance(4000);
    expect(hb()).toBe(E.rebalanceInProgress);
    expect(coordinator.state('g')).toBe('PreparingRebalance');
    expect(coordinator.describe('g')!.members.map((m) => m.memberId)).toEqual([a!.memberId]);
    expect(
      coordinator.heartbeat({ groupId: 'g', memberId: b!.memberId, groupInstanceId: null, generationId: 2 }),
    ).toBe(E.unknownMemberId);
  });

  it('becomes Empty with a new generation when the last member expires', async () => {
    const { clock, coordinator, changes } = setup();
    await stableGroup(coordinator, 1);
    await clock.advance(10_001);
    expect(coordinator.state('g')).toBe('Empty');
    expect(coordinator.describe('g')!.generationId).toBe(2);
    expect(changes.at(-1)).toEqual({ groupId: 'g', generationId: 2 });
  });

  it('drops a member id handed out with MEMBER_ID_REQUIRED if it never comes back', async () => {
    const { clock, coordinator } = setup();
    const [a] = await stableGroup(coordinator, 1);
    const pending = await coordinator.joinGroup(joinInput({ clientId: 'late' }));
    expect(pending.errorCode).toBe(E.memberIdRequired);
    await clock.advance(6000);
    expect(
      coordinator.heartbeat({ groupId: 'g', memberId: a!.memberId, groupInstanceId: null, generationId: 1 }),
    ).toBe(E.none);
    await clock.advance(6000);
    const again = await coordinator.joinGroup(joinInput({ memberId: pending.memberId }));
    expect(again.errorCode).toBe(E.unknownMemberId);
    expect(coordinator.describe('g')!.members.map((m) => m.memberId)).toEqual([a!.memberId]);
  });

  it('answers parked syncs with REBALANCE_IN_PROGRESS when a new rebalance starts', async () => {
    const { coordinator } = setup();
    const joined = await stableGroup(coordinator, 1);
    const second = await joinNew(coordinator, { clientId: 'second' });
    const rejoin = track(coordinator.joinGroup(joinInput({ memberId: joined[0]!.memberId })));
    await settle();
    const follower = second.value!;
    const parked = track(
      coordinator.syncGroup({
        groupId: 'g',
        memberId: follower.memberId,
        groupInstanceId: null,
        generationId: follower.generationId,
        protocolType: null,
        protocolName: null,
        assignments: [],
      }),
    );
    await settle();
    expect(parked.done).toBe(false);
    expect(rejoin.value!.generationId).toBe(follower.generationId);
    const third = await joinNew(coordinator, { clientId: 'third' });
    await settle();
    expect(parked.value).toMatchObject<Partial<SyncGroupOutcome>>({ errorCode: E.rebalanceInProgress });
    expect(third.done).toBe(false);
    const sync = await coordinator.syncGroup({
      groupId: 'g',
      memberId: follower.memberId,
      groupInstanceId: null,
      generationId: follower.generationId,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    expect(sync.errorCode).toBe(E.rebalanceInProgress);
  });

  it('removes members that never sync once the rebalance timeout passes, then rebalances', async () => {
    const { clock, coordinator } = setup();
    const joins = [await joinNew(coordinator, { clientId: 'a' })];
    await settle();
    const leader = joins[0]!.value!;
    expect(coordinator.state('g')).toBe('CompletingRebalance');
    await clock.advance(30_001);
    // The only member (the leader) never synced: it is gone and the group is empty.
    expect(coordinator.state('g')).toBe('Empty');
    const hb = coordinator.heartbeat({
      groupId: 'g',
      memberId: leader.memberId,
      groupInstanceId: null,
      generationId: 1,
    });
    expect(hb).toBe(E.unknownMemberId);
  });

  it('answers a rejoin of a stable follower without a rebalance, and a changed subscription with one', async () => {
    const { coordinator } = setup();
    const members = await stableGroup(coordinator, 2);
    const follower = members.find((m) => m.memberId !== m.leader)!;
    const same = await coordinator.joinGroup(joinInput({ memberId: follower.memberId }));
    expect(same.errorCode).toBe(E.none);
    expect(same.generationId).toBe(follower.generationId);
    expect(coordinator.state('g')).toBe('Stable');
    const changed = track(
      coordinator.joinGroup(
        joinInput({ memberId: follower.memberId, protocols: [{ name: 'range', metadata: bytes('new') }] }),
      ),
    );
    await settle();
    expect(changed.done).toBe(false);
    expect(coordinator.state('g')).toBe('PreparingRebalance');
  });
});

describe('group coordinator: heartbeats and generations', () => {
  it('checks member, then generation, then state', async () => {
    const { coordinator } = setup();
    const [a] = await stableGroup(coordinator, 1);
    const hb = (memberId: string, generationId: number, groupId = 'g') =>
      coordinator.heartbeat({ groupId, memberId, groupInstanceId: null, generationId });
    expect(hb(a!.memberId, 1)).toBe(E.none);
    expect(hb(a!.memberId, 7)).toBe(E.illegalGeneration);
    expect(hb('someone', 1)).toBe(E.unknownMemberId);
    expect(hb(a!.memberId, 1, 'no-such-group')).toBe(E.unknownMemberId);
  });

  it('rejects syncs from unknown members, old generations and other protocols', async () => {
    const { coordinator } = setup();
    const [a] = await stableGroup(coordinator, 1);
    const sync = (over: Partial<Parameters<GroupCoordinator['syncGroup']>[0]>) =>
      coordinator.syncGroup({
        groupId: 'g',
        memberId: a!.memberId,
        groupInstanceId: null,
        generationId: 1,
        protocolType: null,
        protocolName: null,
        assignments: [],
        ...over,
      });
    expect((await sync({ memberId: 'x' })).errorCode).toBe(E.unknownMemberId);
    expect((await sync({ generationId: 0 })).errorCode).toBe(E.illegalGeneration);
    expect((await sync({ protocolType: 'connect' })).errorCode).toBe(E.inconsistentGroupProtocol);
    expect((await sync({ protocolName: 'roundrobin' })).errorCode).toBe(E.inconsistentGroupProtocol);
    expect((await sync({ groupId: 'nope' })).errorCode).toBe(E.unknownMemberId);
    expect((await sync({ protocolType: 'consumer', protocolName: 'range' })).errorCode).toBe(E.none);
  });
});

describe('group coordinator: leaving', () => {
  it('removes a batch of members with an error for each unknown one, and goes Empty', async () => {
    const { coordinator } = setup();
    const [a, b] = await stableGroup(coordinator, 2);
    const outcome = coordinator.leaveGroup('g', [
      { memberId: a!.memberId, groupInstanceId: null },
      { memberId: 'ghost', groupInstanceId: null },
    ]);
    expect(outcome.errorCode).toBe(E.none);
    expect(outcome.members.map((m) => m.errorCode)).toEqual([E.none, E.unknownMemberId]);
    expect(coordinator.state('g')).toBe('PreparingRebalance');
    const single = coordinator.leaveGroup('g', [{ memberId: b!.memberId, groupInstanceId: null }]);
    expect(single.errorCode).toBe(E.none);
    expect(coordinator.state('g')).toBe('Empty');
    expect(coordinator.leaveGroup('g', [{ memberId: b!.memberId, groupInstanceId: null }]).errorCode).toBe(
      E.unknownMemberId,
    );
    expect(coordinator.leaveGroup('unknown', [{ memberId: 'x', groupInstanceId: null }]).errorCode).toBe(
      E.unknownMemberId,
    );
  });

  it('completes a waiting rebalance when the member everyone waits for leaves', async () => {
    const { coordinator } = setup();
    const [a, b] = await stableGroup(coordinator, 2);
    const rejoin = track(coordinator.joinGroup(joinInput({ memberId: a!.memberId })));
    await settle();
    expect(rejoin.done).toBe(false);
    coordinator.leaveGroup('g', [{ memberId: b!.memberId, groupInstanceId: null }]);
    await settle();
    expect(rejoin.value!.errorCode).toBe(E.none);
    expect(rejoin.value!.members).toHaveLength(1);
  });
});

describe('group coordinator: static membership', () => {
  async function staticMember(coordinator: GroupCoordinator, instance: string) {
    const join = track(coordinator.joinGroup(joinInput({ groupInstanceId: instance, clientId: instance })));
    await settle();
    return join;
  }

  it('lets a static member rejoin with a new id without a rebalance, fencing the old id', async () => {
    const { coordinator } = setup();
    const a = await staticMember(coordinator, 'instance-a');
    // A static member skips MEMBER_ID_REQUIRED.
    expect(a.value!.errorCode).toBe(E.none);
    const old = a.value!;
    await coordinator.syncGroup({
      groupId: 'g',
      memberId: old.memberId,
      groupInstanceId: 'instance-a',
      generationId: old.generationId,
      protocolType: null,
      protocolName: null,
      assignments: [{ memberId: old.memberId, assignment: bytes('all partitions') }],
    });
    const again = await coordinator.joinGroup(
      joinInput({ groupInstanceId: 'instance-a', clientId: 'instance-a' }),
    );
    expect(again.errorCode).toBe(E.none);
    expect(again.memberId).not.toBe(old.memberId);
    expect(again.generationId).toBe(old.generationId);
    expect(again.leader).toBe(again.memberId);
    expect(again.skipAssignment).toBe(true);
    expect(coordinator.state('g')).toBe('Stable');
    const sync = await coordinator.syncGroup({
      groupId: 'g',
      memberId: again.memberId,
      groupInstanceId: 'instance-a',
      generationId: again.generationId,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    expect(text(sync.assignment)).toBe('all partitions');
    const fenced = coordinator.heartbeat({
      groupId: 'g',
      memberId: old.memberId,
      groupInstanceId: 'instance-a',
      generationId: old.generationId,
    });
    expect(fenced).toBe(E.fencedInstanceId);
    expect(coordinator.validateCommit('g', old.memberId, 'instance-a', old.generationId)).toBe(
      E.fencedInstanceId,
    );
    const fencedJoin = await coordinator.joinGroup(
      joinInput({ memberId: old.memberId, groupInstanceId: 'instance-a' }),
    );
    expect(fencedJoin.errorCode).toBe(E.fencedInstanceId);
  });

  it('leaves by instance id, and fences a leave naming another member', async () => {
    const { coordinator } = setup();
    const a = await staticMember(coordinator, 'instance-a');
    const wrong = coordinator.leaveGroup('g', [{ memberId: 'other', groupInstanceId: 'instance-a' }]);
    expect(wrong.members[0]!.errorCode).toBe(E.fencedInstanceId);
    const right = coordinator.leaveGroup('g', [{ memberId: '', groupInstanceId: 'instance-a' }]);
    expect(right.members[0]!.errorCode).toBe(E.none);
    expect(coordinator.state('g')).toBe('Empty');
    expect(a.value!.errorCode).toBe(E.none);
    const unknown = coordinator.leaveGroup('g', [{ memberId: '', groupInstanceId: 'instance-a' }]);
    expect(unknown.members[0]!.errorCode).toBe(E.unknownMemberId);
  });

  it('rebalances when a static member comes back with a different subscription', async () => {
    const { coordinator } = setup();
    const a = await staticMember(coordinator, 'instance-a');
    await coordinator.syncGroup({
      groupId: 'g',
      memberId: a.value!.memberId,
      groupInstanceId: 'instance-a',
      generationId: 1,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    const changed = await coordinator.joinGroup(
      joinInput({
        groupInstanceId: 'instance-a',
        protocols: [{ name: 'range', metadata: bytes('other topics') }],
      }),
    );
    expect(changed.errorCode).toBe(E.none);
    expect(changed.generationId).toBe(2);
  });
});

describe('group coordinator: offsets, views and deletion', () => {
  it('validates offset commits by member and generation, allowing simple commits only without members', async () => {
    const { coordinator } = setup();
    expect(coordinator.validateCommit('fresh', '', null, -1)).toBe(E.none);
    expect(coordinator.validateCommit('fresh', 'm', null, 3)).toBe(E.illegalGeneration);
    const [a] = await stableGroup(coordinator, 1);
    expect(coordinator.validateCommit('g', a!.memberId, null, 1)).toBe(E.none);
    expect(coordinator.validateCommit('g', a!.memberId, null, 0)).toBe(E.illegalGeneration);
    expect(coordinator.validateCommit('g', 'x', null, 1)).toBe(E.unknownMemberId);
    expect(coordinator.validateCommit('g', '', null, -1)).toBe(E.unknownMemberId);
    // Committing before rejoining is allowed while the group prepares a rebalance.
    await joinNew(coordinator, { clientId: 'b' });
    expect(coordinator.state('g')).toBe('PreparingRebalance');
    expect(coordinator.validateCommit('g', a!.memberId, null, 1)).toBe(E.none);
  });

  it('refuses commits while the group waits for its assignment', async () => {
    const { coordinator } = setup();
    const join = await joinNew(coordinator);
    await settle();
    expect(coordinator.validateCommit('g', join.value!.memberId, null, 1)).toBe(E.rebalanceInProgress);
  });

  it('describes members with metadata and assignment once stable', async () => {
    const { coordinator } = setup();
    const [a] = await stableGroup(coordinator, 1);
    const summary = coordinator.describe('g')!;
    expect(summary).toMatchObject({
      state: 'Stable',
      protocolType: 'consumer',
      protocolName: 'range',
      generationId: 1,
    });
    expect(summary.members[0]).toMatchObject({
      memberId: a!.memberId,
      clientId: 'client0',
      clientHost: '/127.0.0.1',
    });
    expect(text(summary.members[0]!.assignment)).toBe(`for ${a!.memberId}`);
    expect(text(summary.members[0]!.metadata)).toBe('range-meta');
    expect(coordinator.describe('none')).toBeNull();
  });

  it('deletes only empty groups', async () => {
    const { clock, coordinator } = setup();
    await stableGroup(coordinator, 1);
    expect(coordinator.deleteGroup('g')).toBe(E.nonEmptyGroup);
    expect(coordinator.deleteGroup('missing')).toBe(E.groupIdNotFound);
    await clock.advance(10_001);
    expect(coordinator.deleteGroup('g')).toBe(E.none);
    expect(coordinator.has('g')).toBe(false);
  });

  it('restores a persisted group as Empty with its generation, and answers parked requests on close', async () => {
    const { coordinator } = setup();
    coordinator.restore('old', {
      state: 'Empty',
      protocolType: 'consumer',
      generationId: 9,
      protocolName: null,
      leader: null,
      members: [],
    });
    expect(coordinator.describe('old')).toMatchObject({
      state: 'Empty',
      generationId: 9,
      protocolType: 'consumer',
    });
    const join = await joinNew(coordinator, { groupId: 'old' });
    await settle();
    expect(join.value!.generationId).toBe(10);
    const parked = await joinNew(coordinator, { groupId: 'old', clientId: 'b' });
    coordinator.close();
    await settle();
    expect(parked.value!.errorCode).toBe(E.coordinatorNotAvailable);
  });
});
