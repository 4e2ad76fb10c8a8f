import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { DeleteGroupsResponse } from '../src/codec/messages/delete-groups-response.js';
import type { JoinGroupResponse } from '../src/codec/messages/join-group-response.js';
import type { LeaveGroupResponse } from '../src/codec/messages/leave-group-response.js';
import { RawClient } from './helpers/raw-client.js';
import { decodeResponse } from '../src/codec/index.js';
import { startServer, type KafkaServer } from './helpers/server.js';

const JOIN_GROUP = 11;
const LEAVE_GROUP = 13;
const DELETE_GROUPS = 42;

/** A consumer subscription (ConsumerProtocolSubscription v0) to topic `race`. */
const SUBSCRIPTION = Buffer.from([0, 0, 0, 0, 0, 1, 0, 4, 0x72, 0x61, 0x63, 0x65, 0, 0, 0, 0]);

/**
 * Joins `groupId` as its only member and leaves before any SyncGroup, so the group's first record
 * is written as it empties, while DeleteGroups, sent in the same write, deletes the group.
 */
async function joinLeaveAndDelete(port: number, groupId: string): Promise<number> {
  const member = await RawClient.open(port);
  const admin = await RawClient.open(port);
  try {
    const join = {
      groupId,
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      memberId: '',
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: SUBSCRIPTION }],
      reason: null,
    };
    const first = await member.request<JoinGroupResponse>(JOIN_GROUP, 5, join);
    const joined = await member.request<JoinGroupResponse>(JOIN_GROUP, 5, {
      ...join,
      memberId: first.memberId,
    });
    expect(joined.errorCode).toBe(0);
    // LeaveGroup is answered at once; DeleteGroups right behind it finds the group Empty while the
    // record written as it emptied may not be stored yet.
    admin.send(LEAVE_GROUP, 4, {
      groupId,
      memberId: '',
      members: [{ memberId: joined.memberId, groupInstanceId: null, reason: null }],
    });
    admin.send(DELETE_GROUPS, 1, { groupsNames: [groupId] });
    const left = decodeResponse(await admin.nextFrame(), LEAVE_GROUP, 4).response as LeaveGroupResponse;
    expect(left.errorCode).toBe(0);
    const deleted = decodeResponse(await admin.nextFrame(), DELETE_GROUPS, 1)
      .response as DeleteGroupsResponse;
    return deleted.results[0]!.errorCode;
  } finally {
    member.close();
    admin.close();
  }
}

describe('DeleteGroups as the group empties', () => {
  it('keeps the deleted groups deleted across a restart', async () => {
    const kafka = ['group_initial_rebalance_delay_ms = 0'];
    let server: KafkaServer = await startServer({ kafka });
    try {
      const groups = ['race-a', 'race-b', 'race-c', 'race-d', 'race-e'];
      for (const groupId of groups) expect(await joinLeaveAndDelete(server.port, groupId)).toBe(0);
      const client = (port: number) =>
        new Kafka({ brokers: [`127.0.0.1:${port}`], clientId: 'race-test', logLevel: logLevel.NOTHING });
      let admin = client(server.port).admin();
      await admin.connect();
      expect((await admin.listGroups()).groups).toEqual([]);
      await admin.disconnect();

      await server.kill('SIGTERM');
      server = await startServer({ dir: server.dir, port: server.port, kafka });
      admin = client(server.port).admin();
      await admin.connect();
      try {
        expect((await admin.listGroups()).groups).toEqual([]);
      } finally {
        await admin.disconnect();
      }
    } finally {
      await server.stop();
    }
  }, 60_000);
});
