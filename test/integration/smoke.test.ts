import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type TestStack } from '../helpers/stack.js';

describe('mesh smoke', () => {
  let s: TestStack;
  beforeAll(async () => {
    s = await startStack({ workers: 2 });
  });
  afterAll(async () => {
    await s?.stop();
  });
  it('runs a noop job of 500 tasks to success', async () => {
    const c = await s.client('alice');
    const sub = await c.submit({ kind: 'noop', params: { tasks: 500 } });
    expect(sub.tasks).toBe(500);
    const info = await c.wait(sub.jobId, { timeoutMs: 60_000 });
    expect(info.state).toBe('succeeded');
    expect(info.done).toBe(500);
  });
});
