import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { run, Watched } from './helpers/processes.js';
import { startServer, type MqttServer } from './helpers/server.js';

/** mosquitto_pub and mosquitto_sub from Debian's mosquitto-clients. */
let server: MqttServer;
let port: string;
let seq = 0;
const unique = (what: string) => `${what}-${++seq}`;

beforeAll(async () => {
  server = await startServer();
  port = String(server.port);
});
afterAll(async () => {
  await server.stop();
});
const running: Watched[] = [];
afterEach(() => {
  // A failed test must not leave a subscriber process behind.
  for (const subscriber of running.splice(0)) subscriber.kill();
});

const host = () => ['-h', '127.0.0.1', '-p', port];

/**
 * mosquitto_sub with debug output, resolved once its SUBACK arrived (stdbuf: its stdout is a
 * pipe, which stdio would otherwise buffer until exit).
 */
async function subscriber(args: string[]): Promise<Watched> {
  const sub = new Watched('stdbuf', ['-oL', 'mosquitto_sub', ...host(), '-d', ...args]);
  running.push(sub);
  await sub.waitFor('received SUBACK');
  return sub;
}

/** The message lines of a mosquitto_sub run with -d (debug lines start with "Client "). */
const messages = (stdout: string) =>
  stdout.split('\n').filter((l) => l.length > 0 && !l.startsWith('Client ') && !l.startsWith('Subscribed'));

async function pub(args: string[], input?: string): Promise<void> {
  const result = await run('mosquitto_pub', [...host(), ...args], 10_000, input);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}

describe.each(['mqttv31', 'mqttv311', 'mqttv5'])('mosquitto clients speaking %s', (version) => {
  it('deliver QoS 0, 1 and 2 messages', async () => {
    const topic = unique(`mosq/${version}`);
    const sub = await subscriber(['-V', version, '-q', '2', '-t', `${topic}/#`, '-C', '3', '-F', '%q %t %p']);
    for (const qos of ['0', '1', '2'])
      await pub(['-V', version, '-q', qos, '-t', `${topic}/${qos}`, '-m', `qos${qos}`]);
    const { code, stdout } = await sub.exited;
    expect(code).toBe(0);
    expect(messages(stdout)).toEqual([`0 ${topic}/0 qos0`, `1 ${topic}/1 qos1`, `2 ${topic}/2 qos2`]);
  });

  it('keep a retained message for later subscribers, and delete it with an empty one', async () => {
    const topic = unique(`mosq-retain/${version}`);
    await pub(['-V', version, '-q', '1', '-r', '-t', topic, '-m', 'state']);
    const first = await run('mosquitto_sub', [
      ...host(),
      '-V',
      version,
      '-t',
      topic,
      '-C',
      '1',
      '-F',
      '%r %p',
    ]);
    expect(first.stdout.trim()).toBe('1 state');
    await pub(['-V', version, '-q', '1', '-r', '-t', topic, '-n']);
    const after = await run('mosquitto_sub', [...host(), '-V', version, '-t', topic, '-C', '1', '-W', '1']);
    expect(after.stdout).toBe('');
  });

  it('publish a will when the client dies', async () => {
    const topic = unique(`mosq-will/${version}`);
    const watcher = await subscriber(['-V', version, '-t', topic, '-C', '1', '-F', '%p']);
    const dying = await subscriber([
      '-V',
      version,
      '-t',
      unique('nothing'),
      '--will-topic',
      topic,
      '--will-payload',
      'gone',
      '--will-qos',
      '1',
    ]);
    dying.kill('SIGKILL');
    const { stdout } = await watcher.exited;
    expect(messages(stdout)).toEqual(['gone']);
  });

  it('keep a persistent session for a returning client id', async () => {
    const topic = unique(`mosq-session/${version}`);
    const id = unique(`mosq-${version}`);
    const session = version === 'mqttv5' ? ['-x', '300'] : [];
    const setup = await run('mosquitto_sub', [
      ...host(),
      '-V',
      version,
      '-c',
      '-i',
      id,
      ...session,
      '-q',
      '1',
      '-t',
      topic,
      '-E',
    ]);
    expect(setup.code).toBe(0);
    for (let i = 0; i < 3; i++) await pub(['-V', version, '-q', '1', '-t', topic, '-m', `offline-${i}`]);
    const back = await run('mosquitto_sub', [
      ...host(),
      '-V',
      version,
      '-c',
      '-i',
      id,
      ...session,
      '-q',
      '1',
      '-t',
      topic,
      '-C',
      '3',
      '-F',
      '%p',
    ]);
    expect(back.stdout.trim().split('\n')).toEqual(['offline-0', 'offline-1', 'offline-2']);
  });
});

describe('mosquitto clients, more', () => {
  it('mosquitto_pub -l sends one message per line, delivered in order', async () => {
    const topic = unique('mosq-lines');
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i}`);
    const sub = await subscriber(['-t', topic, '-q', '1', '-C', String(lines.length), '-F', '%p']);
    await pub(['-q', '1', '-t', topic, '-l'], lines.join('\n') + '\n');
    const { stdout } = await sub.exited;
    expect(messages(stdout)).toEqual(lines);
  });

  it('MQTT 5 user properties and content type pass through', async () => {
    const topic = unique('mosq-props');
    const sub = await subscriber(['-V', 'mqttv5', '-t', topic, '-C', '1', '-F', '%P|%C|%p']);
    await pub([
      '-V',
      'mqttv5',
      '-t',
      topic,
      '-m',
      'body',
      '-D',
      'publish',
      'user-property',
      'room',
      'kitchen',
      '-D',
      'publish',
      'content-type',
      'text/plain',
    ]);
    const { stdout } = await sub.exited;
    expect(messages(stdout)).toEqual(['room:kitchen|text/plain|body']);
  });

  it('a subscription to # does not see $ topics; one naming the $ level does', async () => {
    const level = `$mosq${++seq}`;
    const all = await subscriber(['-t', '#', '-W', '2', '-F', '%t']);
    const dollar = await subscriber(['-t', `${level}/#`, '-C', '1', '-F', '%t']);
    await pub(['-t', `${level}/x`, '-m', 'hidden']);
    const seen = await dollar.exited;
    expect(messages(seen.stdout)).toEqual([`${level}/x`]);
    const rest = await all.exited;
    expect(messages(rest.stdout).filter((t) => t.startsWith('$'))).toEqual([]);
  });

  it('refuses a user with the wrong password (CONNACK 5 on 3.1.1)', async () => {
    const result = await run('mosquitto_pub', [
      ...host(),
      '-u',
      'nobody',
      '-P',
      'secret',
      '-t',
      'x',
      '-m',
      'y',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/refused|not authori[sz]ed|bad user name or password/i);
  });
});
