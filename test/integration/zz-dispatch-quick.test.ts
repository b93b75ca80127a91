import { it, expect } from 'vitest';
import { startStack } from '../helpers/stack.js';
it('dispatch', async () => {
  const s = await startStack({ workers: 2, worker: { slots: 64 } });
  const c = await s.client('alice');
  for (const n of [3000]) {
    const t0 = performance.now();
    const sub = await c.submit({ kind: 'noop', params: { tasks: n } });
    const info = await c.wait(sub.jobId, { timeoutMs: 120_000 });
    const dt = (performance.now() - t0) / 1000;
    console.log(n, info.state, dt.toFixed(2), 's', (n / dt).toFixed(0), 'tasks/s');
  }
  await s.stop();
}, 200_000);
