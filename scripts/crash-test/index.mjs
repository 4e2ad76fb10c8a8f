#!/usr/bin/env node
// Kills nodes of a cluster under traffic on every protocol and checks that nothing acknowledged
// is lost. Builds nothing: run `npm run build` first.
//   npm run crash-test -- --seeds 1-10
//   npm run crash-test -- --seeds 7 --victims both,all --verbose
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1-5' },
    victims: { type: 'string', default: 'b2,b3,journal,both,all' },
    duration: { type: 'string', default: '40' },
    'connect-timeout': { type: 'string', default: '3' },
    verbose: { type: 'boolean', default: false },
  },
});
const [from, to = from] = values.seeds.split('-').map(Number);
const known = new Set(['b2', 'b3', 'journal', 'both', 'all']);
if (
  !Number.isInteger(from) ||
  !Number.isInteger(to) ||
  to < from ||
  values.victims.split(',').some((v) => !known.has(v))
) {
  console.error(
    'usage: npm run crash-test -- [--seeds 1-5] [--victims b2,b3,journal,both,all] [--duration 40] [--connect-timeout 3] [--verbose]',
  );
  process.exit(2);
}

let failed = 0;
for (let seed = from; seed <= to; seed++) {
  const { result, dir } = await runOne(seed);
  const lost = result === null ? null : losses(result);
  if (lost === null || lost.length > 0) {
    failed++;
    if (dir !== null) console.log(`  the nodes' data and logs are kept in ${dir}`);
  } else if (dir !== null) {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    result === null
      ? `seed ${seed}: the run did not finish`
      : `seed ${seed}: ${result.kills} kills; ${lost.length === 0 ? 'nothing acknowledged lost' : lost.join('; ')}` +
          ` (acknowledged: mqtt ${result.mqtt.qos1.acked}+${result.mqtt.qos2.acked}, kafka ${result.kafka.acked},` +
          ` amqp ${result.amqp.acked}; amqp given again ${result.amqp.redelivered})`,
  );
}
process.exit(failed === 0 ? 0 : 1);

function runOne(seed) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, 'run.mjs')], {
      env: {
        ...process.env,
        CRASH_SEED: String(seed),
        CRASH_VICTIMS: values.victims,
        CRASH_DURATION_MS: String(Number(values.duration) * 1000),
        CRASH_CONNECT_TIMEOUT_MS: String(Number(values['connect-timeout']) * 1000),
        CRASH_VERBOSE: values.verbose ? '1' : '0',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let result = null;
    let dir = null;
    let buffered = '';
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) {
        if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7));
        else if (values.verbose) console.log(`  ${line}`);
        dir ??= / nodes in (\S+)$/.exec(line)?.[1] ?? null;
      }
    });
    child.on('close', () => resolve({ result, dir }));
  });
}

/** What a run lost or broke, in words; empty when nothing. */
function losses({ mqtt, kafka, amqp }) {
  const lost = [];
  if (mqtt.qos1.missing > 0)
    lost.push(`MQTT QoS 1 lost ${mqtt.qos1.missing} (first ${mqtt.qos1.firstMissing.join(',')})`);
  if (mqtt.qos2.missing > 0)
    lost.push(`MQTT QoS 2 lost ${mqtt.qos2.missing} (first ${mqtt.qos2.firstMissing.join(',')})`);
  if (mqtt.qos2.twice > 0) lost.push(`MQTT QoS 2 given twice ${mqtt.qos2.twice}`);
  if (mqtt.lostSessions.length > 0) lost.push(`MQTT sessions lost: ${mqtt.lostSessions.join(',')}`);
  if (mqtt.notConnected.length > 0)
    lost.push(`MQTT clients not connected at the end: ${mqtt.notConnected.join(',')}`);
  if (kafka.missing > 0) lost.push(`Kafka lost ${kafka.missing} (batches ${JSON.stringify(kafka.batches)})`);
  if (kafka.twice > 0) lost.push(`Kafka records twice ${kafka.twice}`);
  if (amqp.missing > 0) lost.push(`AMQP lost ${amqp.missing}`);
  return lost;
}
