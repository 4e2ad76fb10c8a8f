import { afterEach, describe, expect, it } from 'vitest';
import { createAdminHttp } from '../src/admin/http.js';
import { NodeMetrics } from '../src/metrics.js';
import { NodeStatus } from '../src/node-status.js';

describe('admin HTTP health', () => {
  const apps: Array<ReturnType<typeof createAdminHttp>> = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  it('answers 503 until the node is ready, 200 while ready, 503 again when stopping', async () => {
    const status = new NodeStatus('1.2.3', 9, ['meta', 'broker', 'journal']);
    const app = createAdminHttp(status, new NodeMetrics({ node: '9' }));
    apps.push(app);

    const starting = await app.inject({ method: 'GET', url: '/health/ready' });
    expect(starting.statusCode).toBe(503);
    expect(starting.json()).toMatchObject({ ready: false, status: 'starting', version: '1.2.3', nodeId: 9 });
    expect((await app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);

    status.markReady();
    expect((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);

    status.markStopping();
    const stopping = await app.inject({ method: 'GET', url: '/health/ready' });
    expect(stopping.statusCode).toBe(503);
    expect(stopping.json()).toMatchObject({ status: 'stopping' });
  });

  it('registers a metric name once and reuses it', async () => {
    const metrics = new NodeMetrics({ node: '1' });
    const a = metrics.counter({ name: 'robustmq_test_total', help: 'x', labelNames: ['k'] });
    const b = metrics.counter({ name: 'robustmq_test_total', help: 'x', labelNames: ['k'] });
    a.inc({ k: 'v' });
    b.inc({ k: 'v' }, 2);
    expect(await metrics.render()).toContain('robustmq_test_total{k="v",node="1"} 3');
    expect(() => metrics.gauge({ name: 'robustmq_test_total', help: 'x' })).toThrow(/another type/);
  });
});
