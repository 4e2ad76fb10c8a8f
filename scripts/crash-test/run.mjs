// One seeded run: traffic on every protocol, nodes killed and started again, then everything
// acknowledged read back. Prints one line, `RESULT <json>`; options come from the environment
// (set by index.mjs).
import { resolve } from 'node:path';
import { amqpTraffic } from './amqp-traffic.mjs';
import { exampleCluster } from './cluster.mjs';
import { kafkaTraffic } from './kafka-traffic.mjs';
import { mqttTraffic } from './mqtt-traffic.mjs';

const seed = Number(process.env.CRASH_SEED);
const durationMs = Number(process.env.CRASH_DURATION_MS);
const victims = process.env.CRASH_VICTIMS.split(',');
const verbose = process.env.CRASH_VERBOSE === '1';
const connectTimeout = Number(process.env.CRASH_CONNECT_TIMEOUT_MS);

const startedAt = Date.now();
const log = (line) => console.log(`${((Date.now() - startedAt) / 1000).toFixed(1)} ${line}`);
const trace = verbose ? log : () => {};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A small linear congruential generator: the same seed kills the same nodes at the same times.
let state = (seed * 2654435761) % 4294967296;
const random = () => {
  state = (state * 1664525 + 1013904223) % 4294967296;
  return state / 4294967296;
};

const cluster = exampleCluster(resolve(import.meta.dirname, '../..'));
log(`seed ${seed}, nodes in ${cluster.dir}`);
cluster.start('journal');
await sleep(1500);
cluster.start('b2');
cluster.start('b3');
await sleep(4000);

const mqtt = mqttTraffic({ connectTimeout, trace });
await sleep(1500);
mqtt.start();
const kafka = await kafkaTraffic({ seed, trace });
const amqp = amqpTraffic();
amqp.start();
const progress = verbose
  ? setInterval(() => {
      const { qos1, qos2 } = mqtt.books;
      log(`acknowledged: mqtt ${qos1.acked.size}/${qos2.acked.size}`);
    }, 1000)
  : null;

const nodesOf = { both: ['b2', 'b3'], all: ['journal', 'b2', 'b3'] };
const endAt = Date.now() + durationMs;
let kills = 0;
for (;;) {
  await sleep(3000 + random() * 5000);
  if (Date.now() >= endAt) break;
  const victim = victims[Math.floor(random() * victims.length)];
  const nodes = nodesOf[victim] ?? [victim];
  log(`kill ${nodes.join('+')}`);
  kills++;
  for (const node of nodes) cluster.kill(node);
  await sleep(300 + random() * 2000);
  for (const node of nodes) cluster.start(node);
  log(`started ${nodes.join('+')}`);
}
mqtt.stop();
amqp.stop();
await kafka.stop();
clearInterval(progress ?? undefined);

// Until the subscribers have everything acknowledged, or nothing more arrives for 10 s.
let last = '';
let still = 0;
for (let waited = 0; waited < 45 && still < 10; waited++) {
  await sleep(1000);
  const { qos1, qos2 } = mqtt.books;
  const missing = [qos1.missing().length, qos2.missing().length, amqp.missing()];
  if (missing.every((n) => n === 0)) break;
  still = missing.join() === last ? still + 1 : 0;
  last = missing.join();
}
const result = { seed, kills, mqtt: mqtt.report(), kafka: await kafka.report(), amqp: amqp.report() };
console.log(`RESULT ${JSON.stringify(result)}`);
mqtt.close();
amqp.close();
cluster.killAll();
process.exit(0);
