/**
 * The kernels' shared DuckDB: its thread count can be set before or after it is made
 * (worker/daemon.ts sets 1: no idle scheduler threads trimming the process heap), and
 * concurrent queries from different connections still run side by side.
 */
import { describe, expect, it } from 'vitest';
import { hats } from '../../astro/index.js';

const threads = () => hats.withDuck(async (c) => Number((await c.runAndReadAll(`SELECT current_setting('threads')`)).getRows()[0]![0]));

describe('shared DuckDB threads', () => {
  it('applies to an instance already made, and back', async () => {
    await hats.setSharedDuckThreads(3);
    expect(await threads()).toBe(3);
    await hats.setSharedDuckThreads(1);
    expect(await threads()).toBe(1);
    await hats.setSharedDuckThreads(0.2); // at least one
    expect(await threads()).toBe(1);
  });

  it('with one thread, two connections query at once and each gets its own answer', async () => {
    await hats.setSharedDuckThreads(1);
    const q = (n: number) => hats.withDuck(async (c) => Number((await c.runAndReadAll(`SELECT sum(i) FROM range(${n}) t(i)`)).getRows()[0]![0]));
    const [a, b] = await Promise.all([q(3_000_000), q(2_000)]);
    expect(a).toBe((3_000_000 * 2_999_999) / 2);
    expect(b).toBe((2_000 * 1_999) / 2);
  });
});
