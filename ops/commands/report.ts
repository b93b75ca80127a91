/**
 * `ubatch report`: the fair-share accounting report, a replay of the ledger
 * (UB_LEDGER, read over NATS: operators have JetStream access) folded by
 * ledger/reports.ts, ranked with the coordinator's Fair Tree, and printed as a
 * table, CSV, JSON or one self-contained HTML file.
 *
 * Capacity: by default the registered worker slots over the window, as the
 * coordinator records them (hourly buckets in KV ub-shares). Otherwise the capacity the
 * report compares usage with is given on the command line, either as
 * `--capacity-cores N` (N cores available over the whole window: capacity =
 * N × window length) or as `--capacity-core-hours X` for the window. Without
 * either, the capacity columns are left out.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { computeFairTree, quotaPeriod, type QuotaPeriodSpec, type ShareTree } from '../../coordinator/fairshare/index.js';
import { buildReport, readLedger, reportToCsv, reportToHtml, type Report, type ReportOptions } from '../../ledger/index.js';
import type { GlobalOptions } from '../config.js';
import { CliUsageError } from '../errors.js';
import { formatBytes, formatCount, renderKeyValues, renderTable } from '../format.js';
import { ApiCode, UbatchApiError } from '../../protocol/index.js';
import { configOf, connectLedgerReader, note, out, outJson, withClient, type Runtime } from './runtime.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** "90s", "15m", "12h", "3d", "2w", "500ms" → ms; CliUsageError naming the option otherwise. */
export function parseDurationMs(value: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/i.exec(value);
  const n = m ? Number(m[1]) : NaN;
  const unit = m?.[2]?.toLowerCase();
  const ms = unit !== undefined ? n * (UNIT_MS[unit] ?? NaN) : NaN;
  if (!Number.isFinite(ms) || ms <= 0) throw new CliUsageError(`${option} must be a duration such as 90s, 15m, 12h, 3d or 2w, got ${JSON.stringify(value)}`, option);
  return ms;
}

/** An ISO date/time ("2025-03-01", "2025-03-01T12:00Z"), "now", or a duration meaning that long before now ("30d"). */
export function parseTimeOption(value: string, option: string, now: number): number {
  const v = value.trim();
  if (v === 'now') return now;
  if (/^\d{4}-\d{2}-\d{2}/.test(v)) {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return t;
  } else if (/^\d+(\.\d+)?\s*(ms|s|m|h|d|w)$/i.test(v)) return now - parseDurationMs(v, option);
  throw new CliUsageError(`${option} must be an ISO date or time (2025-03-01, 2025-03-01T12:00:00Z), "now", or a duration before now (30d), got ${JSON.stringify(value)}`, option);
}

function parseNumberOption(value: string, option: string, min: number, allowMin = true): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || (!allowMin && n === min)) throw new CliUsageError(`${option} must be a number ${allowMin ? '>=' : '>'} ${min}, got ${JSON.stringify(value)}`, option);
  return n;
}

/** "month" | "week" | "day" | "<n>d" → a quota period; "window" → undefined (the report window). */
export function parseQuotaPeriod(value: string): QuotaPeriodSpec | undefined {
  const v = value.trim().toLowerCase();
  if (v === 'window') return undefined;
  if (v === 'month' || v === 'week' || v === 'day') return v;
  const m = /^(\d+)d$/.exec(v);
  if (m && Number(m[1]) > 0) return { days: Number(m[1]) };
  throw new CliUsageError(`--quota-period must be month, week, day, <n>d or window, got ${JSON.stringify(value)}`, '--quota-period');
}

/**
 * Fills each tenant's Fair Tree rank and factor, and each group's rank, from
 * the report's fair-share input (every tenant the ledger knows; a missing
 * share counts 1, as the coordinator's accountant does). Mutates and returns `r`.
 */
export function rankReport(r: Report): Report {
  const tree: ShareTree = { groups: {} };
  for (const [g, spec] of Object.entries(r.fairShare.groups)) {
    const users: Record<string, { share: number }> = {};
    for (const [u, us] of Object.entries(spec.users)) users[u] = { share: us.share ?? 1 };
    tree.groups[g] = { share: spec.share ?? 1, users };
  }
  if (Object.keys(tree.groups).length === 0) return r;
  const usage = (group: string, user?: string): number => {
    const g = r.fairShare.groups[group];
    return (user === undefined ? g?.decayedUsage : g?.users[user]?.decayedUsage) ?? 0;
  };
  const ranked = computeFairTree(tree, usage);
  const byTenant = new Map(ranked.tenants.map((t) => [`${t.group}\u0000${t.user}`, t]));
  for (const t of r.tenants) {
    const rank = byTenant.get(`${t.group}\u0000${t.user}`);
    if (rank) {
      t.fairShareFactor = rank.fairShareFactor;
      t.rank = rank.rank;
    }
  }
  const byGroup = new Map(ranked.groups.map((g) => [g.group, g.rank]));
  for (const g of r.groups) {
    const rank = byGroup.get(g.group);
    if (rank !== undefined) g.rank = rank;
  }
  return r;
}

const n2 = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(1)}%`);

/** The human rendering: a summary, a table of groups and one of tenants (cli-table3). */
export function reportToTable(r: Report): string {
  const t = r.totals;
  const pairs: [string, string][] = [
    ['window', r.span ? `${r.span.from} to ${r.span.to}` : 'no records'],
    ['filter', r.filter.group ? `group ${r.filter.group}` : r.filter.user ? `user ${r.filter.user}` : 'all'],
    ['charged core-hours', `${n2(t.chargedCoreHours)} (allocated ${n2(t.coreHours)}, gpu ${n2(t.gpuHours)} h × ${r.gpuWeight}; measured cpu ${n2(t.cpuHours)} h)`],
    ['tasks', `${formatCount(t.tasks)} ok of ${formatCount(t.attempts)} attempts (${formatCount(t.failedAttempts)} not ok), ${formatCount(t.jobs)} jobs`],
    ['decayed usage', `half-life ${n2(r.halfLifeMs / 86_400_000, 1)} d, as of ${r.decayedAt ?? '-'}`],
  ];
  if (r.quotaWindow) pairs.push(['quota use over', `${r.quotaWindow.from} to ${r.quotaWindow.to}`]);
  if (r.capacity) pairs.push(['capacity', `${n2(r.capacity.coreHours)} core-hours; user computing ${pct(r.capacity.fraction)} of it (survey requirement >= ${pct(r.capacity.target)}: ${r.capacity.meetsTarget ? 'met' : 'NOT met'})`]);
  pairs.push(['check', `${r.checks.equal ? 'sum of charges = sum of task usage' : 'MISMATCH'} (${n2(r.checks.sumOfCharges, 4)} / ${n2(r.checks.sumOfTaskUsage, 4)} core-h)${r.checks.duplicateCharges > 0 ? `, ${r.checks.duplicateCharges} duplicate charges ignored` : ''}`]);
  const lines = [renderKeyValues(pairs), ''];
  lines.push(
    renderTable(
      ['group', 'share', 'share %', 'usage %', 'charged core-h', 'cpu-h', 'gpu-h', 'tasks', 'not ok', 'jobs', 'users', 'quota cpu-h', 'quota use', ...(r.capacity ? ['% capacity'] : []), 'decayed', 'rank'],
      r.groups.map((g) => [
        g.group,
        g.share ?? '-',
        pct(g.normalizedShare),
        pct(g.fractionOfUsage),
        n2(g.chargedCoreHours),
        n2(g.cpuHours),
        n2(g.gpuHours),
        g.tasks,
        g.failedAttempts,
        g.jobs,
        g.users,
        g.quota?.cpuHours ?? '-',
        pct(g.quotaUse),
        ...(r.capacity ? [pct(g.fractionOfCapacity)] : []),
        n2(g.decayedUsage),
        g.rank ?? '-',
      ]),
      { alignRight: Array.from({ length: r.capacity ? 15 : 14 }, (_, i) => i + 1) },
    ),
  );
  lines.push('');
  lines.push(
    renderTable(
      ['group', 'user', 'share', 'charged core-h', 'cpu-h', 'gpu-h', 'tasks', 'attempts', 'not ok', 'jobs', 'quota cpu-h', 'quota use', 'decayed', 'fs factor', 'top job'],
      r.tenants.map((u) => {
        const top = u.topJobs[0];
        return [
          u.group,
          u.user,
          u.share ?? '-',
          n2(u.chargedCoreHours),
          n2(u.cpuHours),
          n2(u.gpuHours),
          u.tasks,
          u.attempts,
          u.failedAttempts,
          u.jobs,
          u.quota?.cpuHours ?? '-',
          pct(u.quotaUse),
          n2(u.decayedUsage),
          n2(u.fairShareFactor, 3),
          top ? `${top.jobId}${top.name ? ` (${top.name.slice(0, 24)})` : ''} ${n2(top.coreHours)} h` : '-',
        ];
      }),
      { alignRight: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13] },
    ),
  );
  return lines.join('\n');
}

export interface ReportFlags {
  group?: string;
  all?: boolean;
  from?: string;
  to?: string;
  format: string;
  out?: string;
  json?: boolean;
  halfLife: string;
  gpuWeight: string;
  capacityCores?: string;
  capacityCoreHours?: string;
  topJobs: string;
  quotaPeriod: string;
  forUser?: string;
}

/** Command-line flags → buildReport options. Pure apart from the clock; throws CliUsageError. */
export function reportOptionsFromFlags(flags: ReportFlags, user: string | undefined, now: number): ReportOptions {
  if (flags.all && (flags.group !== undefined || user !== undefined)) throw new CliUsageError('--all cannot be combined with --group or --user', '--all');
  if (flags.group !== undefined && user !== undefined) throw new CliUsageError('use one of --group and --user', '--group');
  if (flags.capacityCores !== undefined && flags.capacityCoreHours !== undefined) throw new CliUsageError('use one of --capacity-cores and --capacity-core-hours', '--capacity-cores');
  const from = flags.from !== undefined ? parseTimeOption(flags.from, '--from', now) : undefined;
  const to = flags.to !== undefined ? parseTimeOption(flags.to, '--to', now) : undefined;
  if (from !== undefined && to !== undefined && to <= from) throw new CliUsageError(`--to (${new Date(to).toISOString()}) must be after --from (${new Date(from).toISOString()})`, '--to');
  const topJobs = Number(flags.topJobs);
  if (!Number.isInteger(topJobs) || topJobs < 0 || topJobs > 1000) throw new CliUsageError(`--top-jobs must be an integer from 0 to 1000, got ${JSON.stringify(flags.topJobs)}`, '--top-jobs');
  const period = parseQuotaPeriod(flags.quotaPeriod);
  // the quota period that holds the end of the report (to is exclusive)
  const quotaWindow = period === undefined ? undefined : quotaPeriod((to ?? now) - 1, period);
  return {
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    ...(flags.group !== undefined ? { group: flags.group } : {}),
    ...(user !== undefined ? { user } : {}),
    halfLifeMs: parseDurationMs(flags.halfLife, '--half-life'),
    gpuWeight: parseNumberOption(flags.gpuWeight, '--gpu-weight', 0),
    now: to !== undefined ? Math.min(to, now) : now,
    ...(flags.capacityCores !== undefined ? { capacityCores: parseNumberOption(flags.capacityCores, '--capacity-cores', 0, false) } : {}),
    ...(flags.capacityCoreHours !== undefined ? { capacityCoreSeconds: parseNumberOption(flags.capacityCoreHours, '--capacity-core-hours', 0, false) * 3600 } : {}),
    topJobs,
    ...(quotaWindow ? { quotaWindow: { from: quotaWindow.start, to: quotaWindow.end } } : {}),
  };
}

export function registerReportCommand(program: Command, rt: Runtime): void {
  program
    .command('report')
    .description('fair-share accounting report (a replay of the ledger): usage, tasks, jobs, quotas, shares, decayed usage and Fair Tree factor per group and user')
    .option('--group <group>', "only this group's users")
    .option('--all', 'every group and user (the default; --for-user <name> limits the report to one user)')
    .option('--for-user <name>', 'only this user (operators; users always get their own report)')
    .option('--from <time>', 'start of the window: ISO date/time, or a duration before now (30d)')
    .option('--to <time>', 'end of the window (exclusive): ISO date/time, "now", or a duration before now')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'csv', 'json', 'html']).default('table'))
    .option('--out <file>', 'write to this file instead of stdout (html and csv are best written to a file)')
    .option('--json', 'same as --format json')
    .option('--half-life <duration>', 'half-life of the usage decay', '7d')
    .option('--gpu-weight <n>', 'core-seconds charged per GPU-second', '10')
    .option('--capacity-cores <n>', 'the facility capacity: N cores available over the whole window (capacity = N × window length)')
    .option('--capacity-core-hours <x>', 'the facility capacity over the window, in core-hours')
    .option('--top-jobs <n>', 'jobs listed per user', '5')
    .option('--quota-period <period>', 'quota use is measured over the quota period holding the end of the window: month, week, day, <n>d, or window (the report window)', 'month')
    .addHelpText(
      'after',
      `
Charging follows the coordinator: an attempt is charged wall-seconds × allocated cores
(+ GPU weight × GPU-seconds); every attempt counts, failed ones included. Measured
CPU-hours are shown beside it. The sum of charges is checked against the sum of task
usage on every report.

Examples:
  ubatch report --from 2025-03-01 --to 2025-04-01 --capacity-cores 2000
  ubatch report --group desc --format html --out desc-march.html
  ubatch report --for-user alice --json --as-operator

Under authentication a user's report comes from the service (verb report: your own usage only,
with the service's half-life and capacity); everyone's report reads UB_LEDGER and needs operator
credentials (--as-operator on the local stack, or --creds <operator creds>).`,
    )
    .action(async (flags: ReportFlags, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      // the global --user names the report's user only without creds (with creds it must be the creds' user)
      const user = flags.forUser ?? (cfg.creds ? undefined : cmd.optsWithGlobals<GlobalOptions>().user);
      const format = flags.json ? 'json' : flags.format;
      const opts = reportOptionsFromFlags(flags, user, Date.now());
      let report: Report;
      if (cfg.creds?.role === 'user') {
        // a user may not read the ledger: the service replays it and answers with the user's own report
        if (user !== undefined && user !== cfg.user) throw new UbatchApiError(ApiCode.Forbidden, `only operators may read another user's accounting (you are ${cfg.user}); operators: --as-operator`);
        report = await withClient(
          cfg,
          async (client) => (await client.report({ ...(opts.group ? { group: opts.group } : {}), ...(opts.from !== undefined ? { from: opts.from } : {}), ...(opts.to !== undefined ? { to: opts.to } : {}) })) as Report,
          120_000,
        );
        report = rankReport(report);
      } else {
        const nc = await connectLedgerReader(cfg);
        try {
          const records = await readLedger(nc, { onInvalid: (seq, subject, reason) => note(rt, `ubatch: ledger entry ${seq} (${subject}) skipped: ${reason}`) });
          if (opts.capacityCores === undefined && opts.capacityCoreSeconds === undefined) {
            // no capacity given: the registered worker slots over the window, as recorded by the coordinator
            const { Kvm } = await import('@nats-io/kv');
            const { capacityCoreSeconds } = await import('../../coordinator/index.js');
            const cap = await new Kvm(nc)
              .open('ub-shares')
              .then((shares) => capacityCoreSeconds(shares, opts.from ?? records[0]?.time ?? Date.now(), opts.to ?? Date.now()))
              .catch(() => 0);
            if (cap > 0) opts.capacityCoreSeconds = cap;
          }
          report = rankReport(buildReport(records, opts));
        } finally {
          await nc.close().catch(() => undefined);
        }
      }
      const text = format === 'json' ? undefined : format === 'csv' ? reportToCsv(report) : format === 'html' ? reportToHtml(report) : `${reportToTable(report)}\n`;
      if (flags.out !== undefined) {
        const file = resolve(rt.cwd, flags.out);
        const body = text ?? `${JSON.stringify(report, null, 2)}\n`;
        await writeFile(file, body);
        note(rt, `wrote the ${format} report (${formatBytes(Buffer.byteLength(body))}) to ${file}`);
      } else if (text === undefined) outJson(rt, report);
      else rt.io.out.write(text);
      if (!report.checks.equal) {
        note(rt, `ubatch: the sum of charges (${report.checks.sumOfCharges}) does not equal the sum of task usage (${report.checks.sumOfTaskUsage})`);
        rt.exitCode = 1;
      }
    });
}
