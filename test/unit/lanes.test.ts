/** astro/lanes.ts: indexes shared between a few lanes, at most that many at a time, stop after a failure. */
import { describe, expect, it } from 'vitest';
import { forEachInLanes, inLanes } from '../../astro/index.js';

const tick = (ms = 1) => new Promise((r) => setTimeout(r, ms));

describe('inLanes / forEachInLanes', () => {
  it('every index once, at most `lanes` at a time, however many lanes are asked for', async () => {
    for (const [count, lanes] of [[20, 3], [2, 8], [0, 4], [5, 1]] as const) {
      const seen: number[] = [];
      let running = 0;
      let peak = 0;
      await forEachInLanes(count, lanes, async (i) => {
        peak = Math.max(peak, ++running);
        await tick(i % 3);
        seen.push(i);
        running--;
      });
      expect(seen.sort((a, b) => a - b)).toEqual([...Array(count).keys()]);
      expect(peak).toBe(Math.min(count, lanes));
    }
  });

  it('a lane holds its own state for all the indexes it takes', async () => {
    const byLane: number[][] = [];
    await inLanes(9, 2, async (take) => {
      const mine: number[] = [];
      byLane.push(mine);
      for (let i = take(); i !== undefined; i = take()) {
        mine.push(i);
        await tick();
      }
    });
    expect(byLane).toHaveLength(2);
    expect(byLane.flat().sort((a, b) => a - b)).toEqual([...Array(9).keys()]);
  });

  it('after a failure no lane takes another index; every lane is waited for and the first error is thrown', async () => {
    const started: number[] = [];
    let finished = 0;
    const run = forEachInLanes(50, 3, async (i) => {
      started.push(i);
      await tick(i === 1 ? 0 : 5);
      if (i === 1) throw new Error('index 1 failed');
      finished++;
    });
    await expect(run).rejects.toThrow('index 1 failed');
    // indexes 0 and 2 were running when 1 failed: they finished before the error came out, and nothing else started
    expect(started.sort((a, b) => a - b)).toEqual([0, 1, 2]);
    expect(finished).toBe(2);
  });
});
