import { ErrorCode } from '@robustmq/core';
import { describe, it } from 'vitest';
import { expectErrorCode } from '../assertions.js';
import { makeBatches } from '../batches.js';
import type { Subject } from '../subject.js';

export function describeClose(subject: Subject): void {
  describe('close', () => {
    it('fails every later call with CLOSED', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      await engine.append('s', makeBatches(2));
      await subject.close();
      await expectErrorCode(engine.createShard('t'), ErrorCode.Closed);
      await expectErrorCode(engine.deleteShard('s'), ErrorCode.Closed);
      await expectErrorCode(engine.listShards(), ErrorCode.Closed);
      await expectErrorCode(engine.shardInfo('s'), ErrorCode.Closed);
      await expectErrorCode(engine.updateShardConfig('s', { retentionMs: null }), ErrorCode.Closed);
      await expectErrorCode(engine.append('s', makeBatches(1)), ErrorCode.Closed);
      await expectErrorCode(engine.read('s', 0, { maxBytes: 1024 }), ErrorCode.Closed);
      await expectErrorCode(engine.waitForData('s', 0, 10), ErrorCode.Closed);
      await expectErrorCode(engine.offsetForTimestamp('s', 0), ErrorCode.Closed);
      await expectErrorCode(engine.deleteBefore('s', 1), ErrorCode.Closed);
      await expectErrorCode(engine.enforceRetention(Date.now()), ErrorCode.Closed);
    });
  });
}
