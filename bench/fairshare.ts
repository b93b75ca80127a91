/**
 * Fair-share benchmark: tenant pick cost, Fair Tree recompute time, DecayedUsage.add throughput.
 *
 * Run (from the repository root):
 *   npx tsc -p tsconfig.json && node dist/bench/fairshare.js
 * or, when other rooms' files do not compile yet, compile just this benchmark:
 *   npx tsc --outDir /tmp/fairshare-build --rootDir . --module NodeNext --moduleResolution NodeNext \
 *     --target ES2022 --strict --noUncheckedIndexedAccess --skipLibCheck --types node bench/fairshare.ts
 *   node /tmp/fairshare-build/bench/fairshare.js
 *
 * Output: one JSON object per line (`"bench":"fairshare"`) followed by a human summary. Times are
 * given as best and median of several blocks, wall clock and process CPU time (process.cpuUsage),
 * so a busy shared machine can be told apart from a slow kernel.
 * Each measurement is run next to a naive reference in the same process and reported as a ratio:
 *   pick    vs. a linear scan of the ranking (what a worker would do without the index)
 *   ranking vs. nothing (absolute time; target: well under the recompute period)
 *   add     vs. a direct "sum_i usage_i * 2^(-(t - t_i)/h)" over the whole ledger at query time
 *   simulatePolicy: absolute time for a 90-day replay with daily windows
 */
import {
  DAY_MS,
  DecayedUsage,
  fairTreeRanking,
  simulatePolicy,
  TenantPicker,
  type ShareTree,
  type TenantRank,
  type UsageRecord,
} from '../coordinator/fairshare/index.js';
import { mulberry32 } from '../astro/random.js';

const PICK_TARGET_US = 100;
const results: Record<string, unknown>[] = [];

function emit(row: Record<string, unknown>): void {
  const line = { bench: 'fairshare', ...row };
  results.push(line);
  console.log(JSON.stringify(line));
}


function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** A tree of `tenants` tenants: ~sqrt(n) groups, users recurring across groups, usage charged over 30 days. */
function makeWorld(tenants: number, seed: number): { tree: ShareTree; usage: DecayedUsage; now: number } {
  const rand = mulberry32(seed);
  const nGroups = Math.max(1, Math.round(Math.sqrt(tenants) / 1.5));
  const now = Date.UTC(2025, 5, 1);
  const tree: ShareTree = { groups: {} };
  const usage = new DecayedUsage({ now: () => now });
  for (let i = 0; i < tenants; i++) {
    const group = `g${i % nGroups}`;
    const user = `u${Math.floor(rand() * tenants * 0.7)}`;
    const spec = (tree.groups[group] ??= { share: 1 + Math.floor(rand() * 100), users: {} });
    spec.users[user] = { share: 1 + Math.floor(rand() * 4) };
    if (rand() < 0.9) {
      for (let k = 0; k < 3; k++) {
        usage.add({ group, user, coreSeconds: rand() * 1e5, gpuSeconds: rand() < 0.1 ? rand() * 1e3 : 0, at: now - rand() * 30 * DAY_MS });
      }
    }
  }
  return { tree, usage, now };
}

function benchRanking(tenants: number): TenantRank[] {
  const { tree, usage, now } = makeWorld(tenants, tenants);
  let ranking: TenantRank[] = [];
  const times: number[] = [];
  const cpuTimes: number[] = [];
  for (let r = 0; r < 15; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    ranking = fairTreeRanking(tree, usage.usageAt(now));
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuTimes.push((c.user + c.system) / 1000);
  }
  const pickerTimes: number[] = [];
  const picker = new TenantPicker(ranking);
  for (let r = 0; r < 15; r++) {
    const t0 = performance.now();
    picker.update(ranking);
    pickerTimes.push(performance.now() - t0);
  }
  emit({
    case: 'ranking-recompute',
    tenants: ranking.length,
    groups: Object.keys(tree.groups).length,
    minMs: +Math.min(...times.slice(3)).toFixed(3),
    medianMs: +median(times.slice(3)).toFixed(3),
    cpuMinMs: +Math.min(...cpuTimes.slice(3)).toFixed(3),
    pickerUpdateMinMs: +Math.min(...pickerTimes.slice(3)).toFixed(3),
    pickerUpdateMedianMs: +median(pickerTimes.slice(3)).toFixed(3),
  });
  return ranking;
}

interface PickScenario {
  name: string;
  workerCaps: string[];
  /** the best `excludeTop` tenants are skipped, plus 50 random ones when randomExcluded */
  excludeTop: number;
  randomExcluded: boolean;
  /** skipped tenants are passed as the ad-hoc `exclude` Set, or held with setHeld */
  how: 'exclude-set' | 'held';
  drain: boolean;
}

/** Wall and CPU time of `fn`, in µs per op, best and median of `blocks` blocks. */
function timeBlocks(blocks: number, opsPerBlock: number, fn: (ops: number) => void): { wallMinUs: number; wallMedianUs: number; cpuMinUs: number } {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let b = 0; b < blocks; b++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn(opsPerBlock);
    wall.push(((performance.now() - t0) * 1000) / opsPerBlock);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / opsPerBlock);
  }
  return { wallMinUs: Math.min(...wall), wallMedianUs: median(wall), cpuMinUs: Math.min(...cpu) };
}

function benchPick(ranking: TenantRank[], scenario: PickScenario): void {
  const rand = mulberry32(99);
  const caps = ['cpu', 'gpu', 'bigmem', 'arm'];
  const picker = new TenantPicker(ranking);
  // reference: per-tenant backlog maps scanned in ranking order
  const backlog = new Map<string, Map<string, number>>();
  const fill = (): void => {
    for (const r of ranking) {
      for (const cap of caps) {
        const p = cap === 'cpu' ? 0.8 : 0.15;
        if (rand() < p) {
          const n = 1 + Math.floor(rand() * 5);
          picker.setBacklog(r.tenant, cap, n);
          let m = backlog.get(r.tenant);
          if (m === undefined) backlog.set(r.tenant, (m = new Map()));
          m.set(cap, n);
        }
      }
    }
  };
  fill();
  const skipped = new Set<string>(ranking.slice(0, scenario.excludeTop).map((r) => r.tenant));
  if (scenario.randomExcluded) for (let i = 0; i < 50; i++) skipped.add(ranking[Math.floor(rand() * ranking.length)]?.tenant ?? '');
  const exclude = scenario.how === 'exclude-set' ? skipped : undefined;
  if (scenario.how === 'held') for (const t of skipped) picker.setHeld(t, true);
  const order = ranking.map((r) => r.tenant);
  const brute = (wcaps: string[]): string | undefined => {
    for (const t of order) {
      if (skipped.has(t)) continue;
      const m = backlog.get(t);
      if (m === undefined) continue;
      for (const c of wcaps) if ((m.get(c) ?? 0) > 0) return t;
    }
    return undefined;
  };
  const consume = (tenant: string, wcaps: string[], indexed: boolean): void => {
    const m = backlog.get(tenant);
    if (m === undefined) return;
    for (const c of wcaps) {
      const n = m.get(c) ?? 0;
      if (n > 0) {
        m.set(c, n - 1);
        if (indexed) picker.setBacklog(tenant, c, n - 1);
        return;
      }
    }
  };
  const run = (indexed: boolean) => (picks: number): void => {
    for (let i = 0; i < picks; i++) {
      const got = indexed ? picker.pick(scenario.workerCaps, exclude) : brute(scenario.workerCaps);
      if (got === undefined) {
        fill();
        continue;
      }
      if (scenario.drain) consume(got, scenario.workerCaps, indexed);
    }
  };
  // correctness spot check: indexed and brute agree along a draining sequence
  let mismatches = 0;
  for (let i = 0; i < 2000; i++) {
    const a = picker.pick(scenario.workerCaps, exclude);
    const b = brute(scenario.workerCaps);
    if (a !== b) mismatches++;
    if (a === undefined) fill();
    else if (scenario.drain) consume(a, scenario.workerCaps, true);
  }
  const big = ranking.length >= 10_000;
  run(true)(20_000); // warm-up
  const indexed = timeBlocks(7, big ? 20_000 : 40_000, run(true));
  run(false)(1_000);
  const bruteT = timeBlocks(5, big ? 1_000 : 4_000, run(false));
  emit({
    case: 'pick',
    scenario: scenario.name,
    tenants: ranking.length,
    workerCaps: scenario.workerCaps,
    skipped: skipped.size,
    skippedVia: scenario.how,
    drainPerPick: scenario.drain,
    usPerPickWallMin: +indexed.wallMinUs.toFixed(3),
    usPerPickWallMedian: +indexed.wallMedianUs.toFixed(3),
    usPerPickCpuMin: +indexed.cpuMinUs.toFixed(3),
    bruteUsPerPickWallMin: +bruteT.wallMinUs.toFixed(3),
    speedupVsBrute: +(bruteT.wallMinUs / indexed.wallMinUs).toFixed(1),
    targetUs: PICK_TARGET_US,
    meetsTarget: indexed.wallMedianUs <= PICK_TARGET_US,
    agreementMismatches: mismatches,
  });
}

function benchAdd(records: number, tenants: number): void {
  const rand = mulberry32(5);
  const t0 = Date.UTC(2025, 0, 1);
  const ledger: UsageRecord[] = new Array(records);
  for (let i = 0; i < records; i++) {
    const k = Math.floor(rand() * tenants);
    // mostly in time order with some jitter (out-of-order arrivals)
    ledger[i] = { group: `g${k % 40}`, user: `u${k}`, coreSeconds: rand() * 3600, gpuSeconds: rand() < 0.1 ? rand() * 600 : 0, at: t0 + i * 1000 + Math.floor(rand() * 5000) };
  }
  const query = t0 + records * 1000 + 10_000;
  const runs: number[] = [];
  const cpuRuns: number[] = [];
  let usage = new DecayedUsage();
  for (let r = 0; r < 5; r++) {
    usage = new DecayedUsage();
    const c0 = process.cpuUsage();
    const s = performance.now();
    for (const rec of ledger) usage.add(rec);
    runs.push(performance.now() - s);
    const c = process.cpuUsage(c0);
    cpuRuns.push((c.user + c.system) / 1000);
  }
  const ms = Math.min(...runs);
  // reference: the direct sum over the whole ledger for one query
  const s2 = performance.now();
  const direct = new Map<string, number>();
  const h = 7 * DAY_MS;
  for (const rec of ledger) {
    const key = `${rec.group}.${rec.user}`;
    direct.set(key, (direct.get(key) ?? 0) + (rec.coreSeconds + 10 * rec.gpuSeconds) * Math.pow(2, -(query - rec.at) / h));
  }
  const directMs = performance.now() - s2;
  const s3 = performance.now();
  const snap = usage.snapshot(query);
  const snapshotMs = performance.now() - s3;
  let maxRelErr = 0;
  for (const [key, v] of direct) maxRelErr = Math.max(maxRelErr, Math.abs((snap.get(key) ?? 0) - v) / v);
  emit({
    case: 'decayed-usage-add',
    records,
    tenants: usage.tenantCount,
    minMs: +ms.toFixed(1),
    medianMs: +median(runs).toFixed(1),
    cpuMinMs: +Math.min(...cpuRuns).toFixed(1),
    recordsPerSec: Math.round(records / (ms / 1000)),
    nsPerAdd: +((ms * 1e6) / records).toFixed(1),
    snapshotMs: +snapshotMs.toFixed(2),
    directSumOneQueryMs: +directMs.toFixed(1),
    maxRelErrVsDirectSum: maxRelErr,
  });
}

function benchSimulate(): void {
  const { tree } = makeWorld(1_000, 1_000);
  const rand = mulberry32(11);
  const tenants: [string, string][] = [];
  for (const [g, spec] of Object.entries(tree.groups)) for (const u of Object.keys(spec.users)) tenants.push([g, u]);
  const t0 = Date.UTC(2025, 0, 1);
  const records: UsageRecord[] = [];
  for (let i = 0; i < 100_000; i++) {
    const [group, user] = tenants[Math.floor(rand() * rand() * tenants.length)] ?? ['g0', 'u0'];
    records.push({ group, user, coreSeconds: rand() * 3600, gpuSeconds: 0, at: t0 + rand() * 90 * DAY_MS });
  }
  const s = performance.now();
  const { windows } = simulatePolicy(records, tree, { windowMs: DAY_MS, from: t0, to: t0 + 90 * DAY_MS });
  const ms = performance.now() - s;
  emit({ case: 'simulate-policy', records: records.length, tenants: tenants.length, windows: windows.length, ms: +ms.toFixed(1), msPerWindow: +(ms / windows.length).toFixed(2) });
}

function main(): void {
  console.log(`# fairshare bench, node ${process.version}, ${new Date().toISOString()}`);
  for (const n of [1_000, 10_000]) {
    const ranking = benchRanking(n);
    const top = Math.floor(n * 0.2);
    const scenarios: PickScenario[] = [
      { name: 'steady: same best tenant', workerCaps: ['cpu', 'gpu'], excludeTop: 0, randomExcluded: false, how: 'exclude-set', drain: false },
      { name: 'drain, 50 random excluded (Set)', workerCaps: ['cpu', 'gpu'], excludeTop: 0, randomExcluded: true, how: 'exclude-set', drain: true },
      { name: 'drain, rare caps, top 20% held', workerCaps: ['bigmem', 'arm'], excludeTop: top, randomExcluded: true, how: 'held', drain: true },
      { name: 'drain, rare caps, top 20% excluded (Set)', workerCaps: ['bigmem', 'arm'], excludeTop: top, randomExcluded: true, how: 'exclude-set', drain: true },
    ];
    for (const sc of scenarios) benchPick(ranking, sc);
  }
  benchAdd(1_000_000, 1_000);
  benchSimulate();

  console.log('\n# summary');
  for (const r of results) {
    if (r.case === 'ranking-recompute') {
      console.log(
        `ranking recompute ${String(r.tenants).padStart(6)} tenants: ${r.minMs} ms best, ${r.medianMs} ms median, ${r.cpuMinMs} ms CPU (picker.update ${r.pickerUpdateMinMs} / ${r.pickerUpdateMedianMs} ms)`,
      );
    } else if (r.case === 'pick') {
      console.log(
        `pick ${String(r.tenants).padStart(6)} tenants, ${String(r.scenario).padEnd(42)}: ${r.usPerPickWallMin} µs best / ${r.usPerPickWallMedian} µs median / ${r.usPerPickCpuMin} µs CPU (brute ${r.bruteUsPerPickWallMin} µs, x${r.speedupVsBrute}); target ${PICK_TARGET_US} µs ${r.meetsTarget ? 'met' : 'NOT met'}; mismatches vs brute ${r.agreementMismatches}`,
      );
    } else if (r.case === 'simulate-policy') {
      console.log(`simulatePolicy ${r.records} records, ${r.tenants} tenants, ${r.windows} daily windows: ${r.ms} ms (${r.msPerWindow} ms/window)`);
    } else if (r.case === 'decayed-usage-add') {
      console.log(
        `DecayedUsage.add ${r.records} records / ${r.tenants} tenants: ${r.minMs} ms best (${r.medianMs} median, ${r.cpuMinMs} CPU) = ${r.recordsPerSec} rec/s (${r.nsPerAdd} ns/add); snapshot ${r.snapshotMs} ms; direct sum for one query ${r.directSumOneQueryMs} ms; max rel err ${Number(r.maxRelErrVsDirectSum).toExponential(2)}`,
      );
    }
  }
}

main();
