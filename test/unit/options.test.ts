import { describe, expect, it } from 'vitest';
import { backoffFor, compileWorkerOptions, WorkerOptionsError } from '../../worker/index.js';
import { compileCoordinatorOptions, CoordinatorOptionsError } from '../../coordinator/index.js';

describe('compileWorkerOptions', () => {
  it('fills defaults', () => {
    const o = compileWorkerOptions({ id: 'w1' });
    expect(o.capabilities).toEqual(['cpu', 'container', 'image']);
    expect(o.slots).toBeGreaterThanOrEqual(1);
    expect(o.keepAliveMs).toBe(10_000);
    expect(o.backoffMs).toEqual([1000, 5000, 15000]);
  });
  it('clamps and rejects', () => {
    expect(compileWorkerOptions({ id: 'w1', slots: 0 }).slots).toBe(1);
    expect(compileWorkerOptions({ id: 'w1', fetchBatch: 1e9 }).fetchBatch).toBe(1024);
    expect(() => compileWorkerOptions({ id: 'bad.id' })).toThrow(WorkerOptionsError);
    expect(() => compileWorkerOptions({ id: 'w', capabilities: [] })).toThrow(/at least one capability/);
    expect(() => compileWorkerOptions({ id: 'w', capabilities: ['gpu>'] })).toThrow(/invalid capability/);
    expect(() => compileWorkerOptions({ id: 'w', slots: Number.NaN })).toThrow(/must be a number/);
  });
  it('backoff repeats the last delay', () => {
    expect([1, 2, 3, 4, 9].map((a) => backoffFor(a, [10, 20, 30]))).toEqual([10, 20, 30, 30, 30]);
  });
});

describe('compileCoordinatorOptions', () => {
  it('fills defaults and resolves the output root', () => {
    const o = compileCoordinatorOptions({ outputRoot: 'rel/out' });
    expect(o.outputRoot.startsWith('/')).toBe(true);
    expect(o.maxQueuedPerTenant).toBe(10_000);
    expect(o.ackWaitMs).toBe(30_000);
  });
  it('rejects nonsense', () => {
    expect(() => compileCoordinatorOptions({ ackWaitMs: 5 })).toThrow(CoordinatorOptionsError);
    expect(() => compileCoordinatorOptions({ maxQueuedPerTenant: 0 })).toThrow(/>= 1/);
  });
});
