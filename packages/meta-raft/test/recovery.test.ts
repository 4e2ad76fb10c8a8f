import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLocalMetaStore } from '../src/index.js';
import { captureLogger, decode, text, useTempDirs } from './helpers.js';

const LOG = 'meta.log';

/** Writes `/k/0..count-1` as `value-i`, one log record each, and returns the log's bytes. */
async function writeKeys(dir: string, count: number): Promise<Buffer> {
  const store = await openLocalMetaStore({ dir });
  for (let i = 0; i < count; i++) await store.put(`/k/${i}`, text(`value-${i}`));
  await store.close();
  return readFile(join(dir, LOG));
}

describe('LocalMetaStore recovery', () => {
  const tempDir = useTempDirs();

  const tornTails: [string, Buffer][] = [
    ['an incomplete header', Buffer.from([0, 0, 0])],
    [
      'a record running past the end of the file',
      Buffer.concat([Buffer.from([0, 0, 0, 100, 1, 2, 3, 4]), Buffer.alloc(30, 7)]),
    ],
    ['a zero-filled tail', Buffer.alloc(4096)],
  ];
  for (const [name, tail] of tornTails) {
    it(`cuts a torn tail (${name}) with a warning and keeps every whole record`, async () => {
      const dir = await tempDir();
      const intact = await writeKeys(dir, 10);
      await appendFile(join(dir, LOG), tail);
      const logger = captureLogger();
      const store = await openLocalMetaStore({ dir, logger });
      for (let i = 0; i < 10; i++) expect(decode((await store.get(`/k/${i}`))!.value)).toBe(`value-${i}`);
      expect((await stat(join(dir, LOG))).size).toBe(intact.length);
      expect(logger.lines.filter((line) => line.level === 'warn').map((line) => line.message)).toEqual([
        'meta log cut at its last good record',
      ]);
      await store.put('/after', text('x'));
      await store.close();
      const reopened = await openLocalMetaStore({ dir, logger: captureLogger() });
      expect(await reopened.list('/k/')).toHaveLength(10);
      expect(decode((await reopened.get('/after'))!.value)).toBe('x');
      await reopened.close();
    });
  }

  it('cuts the log at a record with a corrupt byte and serves no value from it or after it', async () => {
    const dir = await tempDir();
    const log = await writeKeys(dir, 10);
    const fifth = log.indexOf('/k/5');
    const fourth = log.indexOf('/k/4');
    log[log.indexOf('value-5')]! ^= 0x20;
    await writeFile(join(dir, LOG), log);

    const logger = captureLogger();
    const store = await openLocalMetaStore({ dir, logger });
    for (let i = 0; i < 5; i++) expect(decode((await store.get(`/k/${i}`))!.value)).toBe(`value-${i}`);
    for (let i = 5; i < 10; i++) expect(await store.get(`/k/${i}`)).toBeNull();
    const warning = logger.lines.find((line) => line.level === 'warn');
    expect(warning?.fields.reason).toBe('checksum mismatch');
    const size = (await stat(join(dir, LOG))).size;
    expect(size).toBeGreaterThan(fourth);
    expect(size).toBeLessThan(fifth);
    await store.close();
  });

  it('cuts the log at a record whose length field is damaged', async () => {
    const dir = await tempDir();
    const log = await writeKeys(dir, 10);
    // Every record here has the same size, so record 5 (holding `/k/5`) starts at 5 record sizes.
    const recordSize = log.length / 10;
    const header = 5 * recordSize;
    expect(log.indexOf('/k/5')).toBeGreaterThan(header);
    expect(log.indexOf('/k/5')).toBeLessThan(header + recordSize);
    log[header]! ^= 0x40;
    await writeFile(join(dir, LOG), log);

    const logger = captureLogger();
    const store = await openLocalMetaStore({ dir, logger });
    expect(await store.list('/k/')).toHaveLength(5);
    expect(await store.get('/k/5')).toBeNull();
    expect(logger.lines.some((line) => line.level === 'warn')).toBe(true);
    await store.close();
  });

  it('serves the value as of the last good record when a later overwrite is corrupt', async () => {
    const dir = await tempDir();
    const store = await openLocalMetaStore({ dir });
    for (let i = 0; i < 10; i++) await store.put('/k', text(`v${i}`));
    await store.close();
    const log = await readFile(join(dir, LOG));
    log[log.indexOf('v7') + 1]! ^= 0x01;
    await writeFile(join(dir, LOG), log);

    const reopened = await openLocalMetaStore({ dir, logger: captureLogger() });
    const entry = await reopened.get('/k');
    expect(decode(entry!.value)).toBe('v6');
    expect(entry?.version).toBe(7);
    expect(await reopened.revision()).toBe(7);
    // New writes continue from there and survive another reopen.
    await reopened.put('/k', text('v7-again'));
    await reopened.close();
    const again = await openLocalMetaStore({ dir });
    expect(decode((await again.get('/k'))!.value)).toBe('v7-again');
    expect(await again.revision()).toBe(8);
    await again.close();
  });

  it('drops log records the snapshot already holds, then keeps the index sequence', async () => {
    const dir = await tempDir();
    const staleLog = await writeKeys(dir, 5);
    const store = await openLocalMetaStore({ dir, snapshotLogBytes: 1 });
    await store.put('/k/5', text('value-5'));
    await store.close();
    // As if the process died after the snapshot's rename but before the log was emptied.
    await writeFile(join(dir, LOG), staleLog);

    const reopened = await openLocalMetaStore({ dir });
    expect(await reopened.list('/k/')).toHaveLength(6);
    expect((await stat(join(dir, LOG))).size).toBe(0);
    await reopened.put('/k/6', text('value-6'));
    await reopened.close();
    const logger = captureLogger();
    const again = await openLocalMetaStore({ dir, logger });
    expect(await again.list('/k/')).toHaveLength(7);
    expect(logger.lines.filter((line) => line.level === 'warn')).toEqual([]);
    await again.close();
  });
});
