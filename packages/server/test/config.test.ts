import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '@robustmq/core';
import { loadConfig } from '../src/config/load.js';
import { tempDir } from './helpers/server-process.js';

const dirs: Array<{ remove: () => void }> = [];
afterEach(() => dirs.splice(0).forEach((d) => d.remove()));

function configFile(text: string): string {
  const dir = tempDir('config');
  dirs.push(dir);
  const file = join(dir.path, 'robustmq.toml');
  writeFileSync(file, text);
  return file;
}

async function settingOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).setting;
}

describe('loadConfig', () => {
  it('gives a standalone node with the documented defaults', async () => {
    const { config } = await loadConfig({});
    expect(config).toMatchObject({
      node_id: 1,
      roles: ['meta', 'broker', 'journal'],
      data_dir: './robustmq-data',
      bind: '0.0.0.0',
      http: { port: 58080 },
      log: { level: 'info', format: 'auto' },
      storage: { engine: '@robustmq/journal' },
      auth: { allow_anonymous: true },
    });
  });

  it('layers file, then environment, then flags', async () => {
    const file = configFile(
      [
        'node_id = 7',
        'data_dir = "/from/file"',
        '[http]',
        'port = 1000',
        '[mqtt]',
        'port = 1001',
        'tls_port = 1002',
      ].join('\n'),
    );
    const { config, baseDir } = await loadConfig({
      file,
      env: {
        ROBUSTMQ_HTTP_PORT: '2000',
        ROBUSTMQ_MQTT_TLS_PORT: '2002',
        ROBUSTMQ_NODE_ID: '8',
        PATH: '/bin',
      },
      flags: { httpPort: 3000, roles: ['meta', 'broker', 'journal'] },
    });
    expect(config.node_id).toBe(8);
    expect(config.data_dir).toBe('/from/file');
    expect(config.http.port).toBe(3000);
    expect(config.mqtt).toEqual({ port: 1001, tls_port: 2002 });
    expect(baseDir).toBe(join(file, '..'));
  });

  it('maps the port flags onto protocol sections', async () => {
    const { config } = await loadConfig({ flags: { mqttPort: 11883, kafkaPort: 19092, amqpPort: 15672 } });
    expect(config.mqtt).toEqual({ port: 11883 });
    expect(config.kafka).toEqual({ port: 19092 });
    expect(config.amqp).toEqual({ port: 15672 });
  });

  it('reads lists from the environment and TOML values from --set', async () => {
    const { config } = await loadConfig({
      env: { ROBUSTMQ_PROTOCOLS: 'a, b', ROBUSTMQ_LOG_LEVEL: 'debug' },
      flags: { set: ['storage.group_commit_ms=5', 'log.format=json', 'mqtt.listeners=["tcp","ws"]'] },
    });
    expect(config.protocols).toEqual(['a', 'b']);
    expect(config.log).toEqual({ level: 'debug', format: 'json' });
    expect(config.storage).toEqual({ engine: '@robustmq/journal', group_commit_ms: 5 });
    expect(config.mqtt).toEqual({ listeners: ['tcp', 'ws'] });
  });

  it('names an unknown setting in a server section', async () => {
    expect(await settingOf(loadConfig({ file: configFile('[http]\nprot = 1') }))).toBe('http.prot');
  });

  it('names an invalid value', async () => {
    expect(await settingOf(loadConfig({ file: configFile('[http]\nport = "x"') }))).toBe('http.port');
    expect(await settingOf(loadConfig({ flags: { httpPort: 70000 } }))).toBe('http.port');
    expect(await settingOf(loadConfig({ env: { ROBUSTMQ_LOG_LEVEL: 'loud' } }))).toBe('log.level');
    expect(await settingOf(loadConfig({ flags: { roles: ['meta', 'meta'] } }))).toBe('roles');
    expect(await settingOf(loadConfig({ flags: { roles: ['cook'] } }))).toBe('roles.0');
  });

  it('refuses broker heartbeats no more frequent than the session timeout', async () => {
    const file = configFile(
      '[cluster]\nmeta_nodes = ["1@127.0.0.1:1228"]\nbroker_heartbeat_interval_ms = 5000\nbroker_session_timeout_ms = 5000',
    );
    expect(await settingOf(loadConfig({ file }))).toBe('cluster.broker_heartbeat_interval_ms');
  });

  it("takes the internal port's TLS files only all three together", async () => {
    const file = configFile('[rpc]\ntls_cert = "node.pem"\ntls_key = "node-key.pem"');
    const error = await loadConfig({ file }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).setting).toBe('rpc');
    expect((error as ConfigError).message).toMatch(/tls_cert, tls_key and tls_ca go together/);
    const { config } = await loadConfig({
      file: configFile('[rpc]\ntls_cert = "node.pem"\ntls_key = "node-key.pem"\ntls_ca = "ca.pem"'),
    });
    expect(config.rpc).toMatchObject({ tls_cert: 'node.pem', tls_key: 'node-key.pem', tls_ca: 'ca.pem' });
  });

  it("takes the admin API's certificate and key only together", async () => {
    const file = configFile('[http]\ntls_cert = "admin.pem"');
    const error = await loadConfig({ file }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).setting).toBe('http');
    expect((error as ConfigError).message).toMatch(/tls_cert and tls_key go together/);
  });

  it('names an unknown top-level value and an unknown environment variable', async () => {
    expect(await settingOf(loadConfig({ file: configFile('colour = "blue"') }))).toBe('colour');
    expect(await settingOf(loadConfig({ env: { ROBUSTMQ_VERBOSE: '1' } }))).toBe('ROBUSTMQ_VERBOSE');
  });

  it('ignores the variables that belong to the CLI', async () => {
    await expect(
      loadConfig({ env: { ROBUSTMQ_API_URL: 'http://x', ROBUSTMQ_CONFIG: '/x' } }),
    ).resolves.toBeDefined();
  });

  it('reports a file that is missing or not TOML', async () => {
    await expect(loadConfig({ file: '/nonexistent/robustmq.toml' })).rejects.toThrow(/cannot read .*ENOENT/);
    await expect(loadConfig({ file: configFile('[http\nport = 1') })).rejects.toThrow(/is not valid TOML/);
  });

  it('refuses a --set without a value', async () => {
    expect(await settingOf(loadConfig({ flags: { set: ['http.port'] } }))).toBe('--set');
  });
});
