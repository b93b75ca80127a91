/**
 * A few "lanes" working through the indexes 0..count-1 together: each lane takes the next index
 * when it is free. Once a lane fails, the others take no more; every lane is waited for (so what
 * each holds is released) and the first error is thrown.
 */
export async function inLanes(count: number, lanes: number, lane: (take: () => number | undefined) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const take = () => (failed || next >= count ? undefined : next++);
  const runs = Array.from({ length: Math.max(0, Math.min(lanes, count)) }, () =>
    lane(take).catch((err: unknown) => {
      failed = true;
      throw err;
    }),
  );
  const failure = (await Promise.allSettled(runs)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}

/** `work(i)` for every index 0..count-1, at most `lanes` at a time (see inLanes). */
export function forEachInLanes(count: number, lanes: number, work: (i: number) => Promise<void>): Promise<void> {
  return inLanes(count, lanes, async (take) => {
    for (let i = take(); i !== undefined; i = take()) await work(i);
  });
}
