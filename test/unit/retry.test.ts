// protocol/retry.ts: the backoff schedule and the retry loop shared by start-up (topology), the ledger's
// ordered consumer and the worker's commit of finished tasks.
import { describe, expect, it } from 'vitest';
import { backoffMs, retrying } from '../../protocol/retry.js';

describe('retry', () => {
  it('backs off from base, doubling, capped', () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, 250, 5_000))).toEqual([250, 500, 1000, 2000, 4000, 5000]);
    expect(backoffMs(0, 100, 1000)).toBe(100);
    expect(backoffMs(1000, 100, 1000)).toBe(1000);
  });

  it('returns the first success, with the attempt number, after the failures retryable allowed', async () => {
    const seen: [number, number][] = [];
    const v = await retrying(
      async (attempt) => {
        if (attempt < 3) throw new Error(`timeout ${attempt}`);
        return attempt * 10;
      },
      { baseMs: 1, capMs: 4, retryable: () => true, onRetry: (_e, attempt, delay) => seen.push([attempt, delay]) },
    );
    expect(v).toBe(30);
    expect(seen).toEqual([[1, 1], [2, 2]]);
  });

  it('throws the error retryable refuses, at once, without another try', async () => {
    let tries = 0;
    const err = await retrying(
      async () => {
        tries++;
        throw new Error(tries === 1 ? 'timeout' : 'permissions violation');
      },
      { baseMs: 1, capMs: 1, retryable: (e) => !/permission/.test((e as Error).message) },
    ).catch((e: unknown) => e as Error);
    expect(err.message).toBe('permissions violation');
    expect(tries).toBe(2);
  });

  it('hands retryable the pause that would follow (a deadline check)', async () => {
    const delays: number[] = [];
    const end = Date.now() + 60;
    await expect(
      retrying(async () => Promise.reject(new Error('down')), {
        baseMs: 20,
        capMs: 40,
        retryable: (_e, _a, delay) => (delays.push(delay), Date.now() + delay <= end),
      }),
    ).rejects.toThrow('down');
    expect(delays.slice(0, 2)).toEqual([20, 40]);
    expect(delays.length).toBeLessThanOrEqual(3);
  });
});
