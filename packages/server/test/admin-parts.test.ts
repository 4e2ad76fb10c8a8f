import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TokenStore } from '../src/admin/tokens.js';
import { flattenSettings } from '../src/admin/settings-view.js';
import { loadConfig } from '../src/config/load.js';
import { gateLogger, LogLevelControl } from '../src/log-level.js';
import { captureLogger } from './helpers/admin-node.js';

describe('login tokens', () => {
  it('are random, name their user and password hash, and expire', () => {
    let now = 1_000;
    const tokens = new TokenStore(60_000, () => now);
    const a = tokens.issue('admin', 'hash-1');
    const b = tokens.issue('admin', 'hash-1');
    expect(a.token).not.toBe(b.token);
    expect(a.expiresAt).toBe(61_000);
    expect(tokens.verify(a.token)).toEqual({ username: 'admin', passwordHash: 'hash-1', expiresAt: 61_000 });
    expect(tokens.verify('made-up')).toBeNull();
    now = 61_000;
    expect(tokens.verify(a.token)).toBeNull();
  });
});

describe('the runtime log level', () => {
  it('reaches children made before a change', () => {
    const inner = captureLogger();
    const level = new LogLevelControl('info');
    const child = gateLogger(inner, level).child({ part: 'x' });
    child.debug('no');
    child.info({ n: 1 }, 'yes');
    level.level = 'debug';
    child.debug('now yes');
    level.level = 'silent';
    child.fatal('never');
    expect(inner.lines.map((l) => [l.level, l.msg, l.fields.part])).toEqual([
      ['info', 'yes', 'x'],
      ['debug', 'now yes', 'x'],
    ]);
  });
});

describe('log lines', () => {
  it('carry each key once, with nested components joined into one path', () => {
    const written: string[] = [];
    const root = pino({ level: 'trace', base: { node: 1 } }, { write: (line: string) => written.push(line) });
    const plugin = gateLogger(root, new LogLevelControl('info')).child({ protocol: 'kafka' });
    // A plugin binding its protocol again, and components nested three deep.
    plugin
      .child({ protocol: 'kafka', component: 'storage' })
      .child({ component: 'journal-client', server: 'a' })
      .child({ component: 'rpc-client', server: 'a' })
      .warn({ attempt: 2 }, 'reconnecting');
    const line = written[0]!;
    for (const key of ['node', 'protocol', 'component', 'server']) {
      expect(line.split(`"${key}":`).length - 1).toBe(1);
    }
    expect(JSON.parse(line)).toMatchObject({
      node: 1,
      protocol: 'kafka',
      component: 'storage/journal-client/rpc-client',
      server: 'a',
      attempt: 2,
      msg: 'reconnecting',
    });
  });
});

describe('the config view', () => {
  it('flattens settings to dotted names and masks secrets', async () => {
    const { config } = await loadConfig({
      env: { ROBUSTMQ_ADMIN_PASSWORD: '12345' },
      flags: { set: ['storage.secret_access_key="s3cret"', 'storage.bucket="b"'] },
    });
    expect(config.admin.password).toBe('12345');
    const settings = flattenSettings(config);
    expect(settings).toMatchObject({
      'admin.password': '******',
      'storage.secret_access_key': '******',
      'storage.bucket': 'b',
      'admin.token_ttl_seconds': 43200,
      'http.port': 58080,
      roles: ['meta', 'broker', 'journal'],
    });
  });
});
