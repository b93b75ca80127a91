/**
 * `ubatch shares simulate`: replays the real ledger under other group/user
 * shares, half-life or GPU weight, and shows window by window how the Fair
 * Tree ranking would have differed from the policy in force (the shares the
 * ledger holds, the default half-life), next to each group's observed share
 * of the machine.
 *
 * The history is replayed as it happened (simulatePolicy's contract): this
 * shows how another policy would have ranked the same usage — which groups'
 * work would have been picked first — not a re-run of the scheduler.
 */
import { type Command } from 'commander';
import { InvalidFairShareOptionError, simulatePolicy, type PolicyWindow, type ShareTree, type UsageRecord } from '../../coordinator/fairshare/index.js';
import { chargedUsage, policyInForce, readLedger, type ChargedUsage, type LedgerRecord, type PolicyInForce } from '../../ledger/index.js';
import { CliUsageError } from '../errors.js';
import { renderKeyValues, renderTable } from '../format.js';
import { parseDurationMs, parseTimeOption } from './report.js';
import { configOf, connectNats, note, out, outJson, type Runtime } from './runtime.js';

/** `--share desc=40` (a group) or `--share desc.alice=2` (a user in a group). */
export interface ShareOverrides {
  groups: Map<string, number>;
  /** group → user → share */
  users: Map<string, Map<string, number>>;
}

export function parseShareOverrides(values: readonly string[]): ShareOverrides {
  const o: ShareOverrides = { groups: new Map(), users: new Map() };
  for (const v of values) {
    const m = /^\s*([A-Za-z0-9_-]{1,64})(?:\.([A-Za-z0-9_.-]{1,64}))?\s*=\s*([0-9]+(?:\.[0-9]+)?)\s*$/.exec(v);
    if (!m) throw new CliUsageError(`--share must be <group>=<share> or <group>.<user>=<share> with a share >= 0, got ${JSON.stringify(v)}`, '--share');
    const [, group, user, share] = m;
    if (group === undefined || share === undefined) continue;
    if (user === undefined) o.groups.set(group, Number(share));
    else {
      let u = o.users.get(group);
      if (!u) o.users.set(group, (u = new Map()));
      u.set(user, Number(share));
    }
  }
  return o;
}

/**
 * The share tree of every tenant that was charged or holds a share: shares in
 * force from the ledger, then the overrides; a missing share counts 1 (as the
 * coordinator's accountant does). `equalShares` starts every share at 1 instead.
 */
export function buildShareTree(policy: PolicyInForce, usage: readonly ChargedUsage[], overrides?: ShareOverrides, equalShares = false): ShareTree {
  const tenants = new Map<string, Set<string>>();
  const add = (g: string, u?: string) => {
    let s = tenants.get(g);
    if (!s) tenants.set(g, (s = new Set()));
    if (u !== undefined) s.add(u);
  };
  for (const r of usage) add(r.group, r.user);
  for (const [g, users] of policy.userShares) for (const u of users.keys()) add(g, u);
  for (const g of policy.groupShares.keys()) add(g);
  for (const g of overrides?.groups.keys() ?? []) add(g);
  for (const [g, users] of overrides?.users ?? []) for (const u of users.keys()) add(g, u);
  const tree: ShareTree = { groups: {} };
  for (const g of [...tenants.keys()].sort()) {
    const users: Record<string, { share: number }> = {};
    for (const u of [...(tenants.get(g) ?? [])].sort()) {
      users[u] = { share: overrides?.users.get(g)?.get(u) ?? (equalShares ? undefined : policy.userShares.get(g)?.get(u)) ?? 1 };
    }
    tree.groups[g] = { share: overrides?.groups.get(g) ?? (equalShares ? undefined : policy.groupShares.get(g)) ?? 1, users };
  }
  return tree;
}

export interface SharePolicy {
  halfLifeMs: number;
  gpuWeight: number;
  tree: ShareTree;
}

export interface GroupWindowComparison {
  group: string;
  /** the group's observed fraction of the charged usage in the window (the same under both policies) */
  usageFraction: number;
  current: { share: number; rank?: number };
  simulated: { share: number; rank?: number };
}

export interface TenantRankChange {
  tenant: string;
  current: { rank: number; factor: number };
  simulated: { rank: number; factor: number };
}

export interface WindowComparison {
  from: string;
  to: string;
  groups: GroupWindowComparison[];
  /** tenants whose rank differs at the end of the window, largest move first */
  rankChanges: TenantRankChange[];
}

export interface PolicyComparison {
  current: { halfLifeMs: number; gpuWeight: number; groupShares: Record<string, number> };
  simulated: { halfLifeMs: number; gpuWeight: number; groupShares: Record<string, number> };
  windowMs: number;
  windows: WindowComparison[];
  /** over all windows: how often each group's rank differed */
  summary: { group: string; windowsRankDiffers: number; meanRankCurrent: number; meanRankSimulated: number; meanUsageFraction: number }[];
}

function normalizedGroupShares(tree: ShareTree): Record<string, number> {
  const sum = Object.values(tree.groups).reduce((s, g) => s + g.share, 0);
  const out: Record<string, number> = {};
  for (const [g, spec] of Object.entries(tree.groups)) out[g] = sum > 0 ? spec.share / sum : 0;
  return out;
}

/** Runs simulatePolicy for both policies over the same windows and lines them up. Pure. */
export function comparePolicies(
  usage: readonly UsageRecord[],
  current: SharePolicy,
  simulated: SharePolicy,
  opts: { windowMs: number; from?: number; to?: number; signal?: AbortSignal },
): PolicyComparison {
  const win = { windowMs: opts.windowMs, ...(opts.from !== undefined ? { from: opts.from } : {}), ...(opts.to !== undefined ? { to: opts.to } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
  const a = simulatePolicy(usage, current.tree, { ...win, halfLifeMs: current.halfLifeMs, gpuWeight: current.gpuWeight }).windows;
  const b = simulatePolicy(usage, simulated.tree, { ...win, halfLifeMs: simulated.halfLifeMs, gpuWeight: simulated.gpuWeight }).windows;
  const curShare = normalizedGroupShares(current.tree);
  const simShare = normalizedGroupShares(simulated.tree);
  const groups = [...new Set([...Object.keys(current.tree.groups), ...Object.keys(simulated.tree.groups)])].sort();
  const windows: WindowComparison[] = [];
  const acc = new Map(groups.map((g) => [g, { differs: 0, rankA: 0, rankB: 0, usage: 0 }]));
  for (let i = 0; i < a.length; i++) {
    const wa = a[i] as PolicyWindow;
    const wb = b[i];
    if (!wb) break;
    // the usage fraction is a fact of the history: with another GPU weight the charged amounts differ, so take the current policy's
    const rows: GroupWindowComparison[] = groups.map((g) => {
      const ra = wa.groupRank[g];
      const rb = wb.groupRank[g];
      const s = acc.get(g);
      if (s) {
        if (ra !== rb) s.differs++;
        s.rankA += ra ?? 0;
        s.rankB += rb ?? 0;
        s.usage += wa.groupUsageFraction[g] ?? 0;
      }
      return {
        group: g,
        usageFraction: wa.groupUsageFraction[g] ?? 0,
        current: { share: curShare[g] ?? 0, ...(ra !== undefined ? { rank: ra } : {}) },
        simulated: { share: simShare[g] ?? 0, ...(rb !== undefined ? { rank: rb } : {}) },
      };
    });
    const rankB = new Map(wb.ranking.map((t) => [t.tenant, t]));
    const changes: TenantRankChange[] = [];
    for (const t of wa.ranking) {
      const s = rankB.get(t.tenant);
      if (s && s.rank !== t.rank) changes.push({ tenant: t.tenant, current: { rank: t.rank, factor: t.fairShareFactor }, simulated: { rank: s.rank, factor: s.fairShareFactor } });
    }
    changes.sort((x, y) => Math.abs(y.simulated.rank - y.current.rank) - Math.abs(x.simulated.rank - x.current.rank) || (x.tenant < y.tenant ? -1 : 1));
    windows.push({ from: new Date(wa.from).toISOString(), to: new Date(wa.to).toISOString(), groups: rows, rankChanges: changes });
  }
  const n = Math.max(1, windows.length);
  return {
    current: { halfLifeMs: current.halfLifeMs, gpuWeight: current.gpuWeight, groupShares: curShare },
    simulated: { halfLifeMs: simulated.halfLifeMs, gpuWeight: simulated.gpuWeight, groupShares: simShare },
    windowMs: opts.windowMs,
    windows,
    summary: groups.map((g) => {
      const s = acc.get(g) ?? { differs: 0, rankA: 0, rankB: 0, usage: 0 };
      return { group: g, windowsRankDiffers: s.differs, meanRankCurrent: s.rankA / n, meanRankSimulated: s.rankB / n, meanUsageFraction: s.usage / n };
    }),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const days = (ms: number) => `${+(ms / 86_400_000).toFixed(3)} d`;

/** The human rendering: the two policies, a table per window, and a summary. */
export function renderPolicyComparison(c: PolicyComparison, maxChanges = 5): string {
  const shares = (s: Record<string, number>) => Object.entries(s).map(([g, v]) => `${g} ${pct(v)}`).join(', ');
  const lines: string[] = [
    renderKeyValues([
      ['current', `half-life ${days(c.current.halfLifeMs)}, gpu weight ${c.current.gpuWeight}; group shares ${shares(c.current.groupShares)}`],
      ['simulated', `half-life ${days(c.simulated.halfLifeMs)}, gpu weight ${c.simulated.gpuWeight}; group shares ${shares(c.simulated.groupShares)}`],
      ['windows', `${c.windows.length} of ${days(c.windowMs)}`],
    ]),
  ];
  for (const w of c.windows) {
    lines.push('', `window ${w.from} to ${w.to}`);
    lines.push(
      renderTable(
        ['group', 'usage', 'share now', 'rank now', 'share sim', 'rank sim', 'change'],
        w.groups.map((g) => {
          const d = g.current.rank !== undefined && g.simulated.rank !== undefined ? g.current.rank - g.simulated.rank : 0;
          return [g.group, pct(g.usageFraction), pct(g.current.share), g.current.rank ?? '-', pct(g.simulated.share), g.simulated.rank ?? '-', d > 0 ? `up ${d}` : d < 0 ? `down ${-d}` : ''];
        }),
        { alignRight: [1, 2, 3, 4, 5] },
      ),
    );
    if (w.rankChanges.length > 0) {
      const shown = w.rankChanges.slice(0, maxChanges).map((t) => `${t.tenant} ${t.current.rank}->${t.simulated.rank}`);
      lines.push(`  users whose rank changes: ${shown.join(', ')}${w.rankChanges.length > maxChanges ? `, and ${w.rankChanges.length - maxChanges} more` : ''}`);
    }
  }
  lines.push('', 'over all windows:');
  lines.push(
    renderTable(
      ['group', 'mean usage', 'mean rank now', 'mean rank sim', 'windows ranked differently'],
      c.summary.map((s) => [s.group, pct(s.meanUsageFraction), s.meanRankCurrent.toFixed(2), s.meanRankSimulated.toFixed(2), s.windowsRankDiffers]),
      { alignRight: [1, 2, 3, 4] },
    ),
  );
  return lines.join('\n');
}

function parseNumber(value: string, option: string, min: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min) throw new CliUsageError(`${option} must be a number >= ${min}, got ${JSON.stringify(value)}`, option);
  return n;
}

/** The `shares` command group: the one already registered, else a new one. */
export function sharesCommandOf(program: Command): Command {
  return program.commands.find((c) => c.name() === 'shares') ?? program.command('shares').description('fair-share shares: simulate other policies against the ledger');
}

interface SimulateFlags {
  halfLife?: string;
  gpuWeight?: string;
  share: string[];
  equalShares?: boolean;
  currentHalfLife: string;
  currentGpuWeight: string;
  window: string;
  from?: string;
  to?: string;
  changes: string;
  json?: boolean;
}

export function registerSharesSimulateCommand(program: Command, rt: Runtime): void {
  sharesCommandOf(program)
    .command('simulate')
    .description('replay the ledger under other shares / half-life / GPU weight and compare the Fair Tree ranking with the policy in force, window by window')
    .option('--half-life <duration>', 'simulated half-life (default: the current one)')
    .option('--gpu-weight <n>', 'simulated GPU weight (default: the current one)')
    .option('--share <name=share>', 'simulated share of a group (desc=40) or a user (desc.alice=2); repeatable', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--equal-shares', 'start the simulated policy from equal shares instead of the ledger’s (then apply --share)')
    .option('--current-half-life <duration>', 'the half-life in force (the coordinator’s setting)', '7d')
    .option('--current-gpu-weight <n>', 'the GPU weight in force', '10')
    .option('--window <duration>', 'length of each report window', '1d')
    .option('--from <time>', 'first window starts here: ISO date/time or a duration before now (default: the first charge; earlier usage still decays in)')
    .option('--to <time>', 'last window ends here (default: after the last charge)')
    .option('--changes <n>', 'users with a changed rank listed per window', '5')
    .option('--json', 'print one JSON document')
    .addHelpText(
      'after',
      `
The history is replayed as it happened: the table shows how the simulated policy would
have ranked the same usage (which groups' tasks workers would have pulled first), next
to each group's observed share of the machine in the window.

Example:
  ubatch shares simulate --half-life 3d --share desc=40 --share tvs=20 --window 7d`,
    )
    .action(async (flags: SimulateFlags, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      const now = Date.now();
      const currentHalfLife = parseDurationMs(flags.currentHalfLife, '--current-half-life');
      const currentGpuWeight = parseNumber(flags.currentGpuWeight, '--current-gpu-weight', 0);
      const halfLifeMs = flags.halfLife !== undefined ? parseDurationMs(flags.halfLife, '--half-life') : currentHalfLife;
      const gpuWeight = flags.gpuWeight !== undefined ? parseNumber(flags.gpuWeight, '--gpu-weight', 0) : currentGpuWeight;
      const overrides = parseShareOverrides(flags.share);
      const windowMs = parseDurationMs(flags.window, '--window');
      const from = flags.from !== undefined ? parseTimeOption(flags.from, '--from', now) : undefined;
      const to = flags.to !== undefined ? parseTimeOption(flags.to, '--to', now) : undefined;
      const maxChanges = parseNumber(flags.changes, '--changes', 0);
      const nc = await connectNats(cfg);
      let records: LedgerRecord[];
      try {
        records = await readLedger(nc, { onInvalid: (seq, subject, reason) => note(rt, `ubatch: ledger entry ${seq} (${subject}) skipped: ${reason}`) });
      } finally {
        await nc.close().catch(() => undefined);
      }
      const usage = chargedUsage(records);
      if (usage.length === 0) {
        if (flags.json) return outJson(rt, { windows: [] });
        return out(rt, 'the ledger holds no charges: nothing to simulate');
      }
      const policy = policyInForce(records, to ?? Infinity);
      const current: SharePolicy = { halfLifeMs: currentHalfLife, gpuWeight: currentGpuWeight, tree: buildShareTree(policy, usage) };
      const simulated: SharePolicy = { halfLifeMs, gpuWeight, tree: buildShareTree(policy, usage, overrides, flags.equalShares === true) };
      let comparison: PolicyComparison;
      try {
        comparison = comparePolicies(usage, current, simulated, { windowMs, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) });
      } catch (err) {
        // a window setting the simulator refuses (too many windows, to before from) is a usage error
        if (err instanceof InvalidFairShareOptionError) throw new CliUsageError(err.message, '--window', { cause: err });
        throw err;
      }
      if (flags.json) return outJson(rt, comparison);
      out(rt, renderPolicyComparison(comparison, maxChanges));
    });
}
