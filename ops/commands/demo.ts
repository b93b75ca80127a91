/**
 * `ubatch demo`: the embedded stack end to end on a synthetic survey.
 * Starts the stack, generates a HATS Object catalog, runs each step in
 * DEMO_STEPS as a real job (submit → progress → results), prints the ledger
 * summary, and shuts everything down.
 *
 * Adding a job kind to the demo = adding one DemoStep to DEMO_STEPS: an
 * optional `prepare` that generates the step's own inputs, a spec built from
 * the context (catalog path, output dir, prepared inputs) and a `show` that
 * prints a few lines about the results.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { readLedger, summarizeLedger } from '../../ledger/index.js';
import type { JobInfo, JobSpec, ResultsReply, UbatchClient } from '../../protocol/index.js';
import { parseIntOption, parseListOption } from '../config.js';
import { CliUsageError } from '../errors.js';
import { createProgress, formatBytes, formatCount, formatDuration, renderTable } from '../format.js';
import { startLocalStack, type LocalStack } from '../stack.js';
import { renderLedgerSummary } from './provenance.js';
import { configOf, finalLine, note, onShutdownSignals, out, watchJob, type Runtime } from './runtime.js';

export interface DemoContext {
  rt: Runtime;
  stack: LocalStack;
  client: UbatchClient;
  /** the generated HATS Object catalog */
  catalog: string;
  catalogRows: number;
  /** where the steps write their outputs */
  outDir: string;
  /** where steps may generate extra inputs (light curves, images ...) in `prepare` */
  dataDir: string;
  /** named inputs a step's `prepare` made, for its `spec` (and for later steps) */
  data: Record<string, string>;
  signal: AbortSignal;
  /** runs a query with DuckDB and returns rows as JS objects */
  query(sql: string): Promise<Record<string, unknown>[]>;
}

export interface DemoStep {
  /** short id for --steps */
  id: string;
  title: string;
  /** make the step's own inputs (e.g. a light-curve catalog) under ctx.dataDir, recording them in ctx.data */
  prepare?(ctx: DemoContext): Promise<void>;
  spec(ctx: DemoContext): JobSpec;
  /** print what the job produced (a few lines) */
  show?(ctx: DemoContext, info: JobInfo, results: ResultsReply): Promise<void>;
}

const sq = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** great-circle distance in degrees, as DuckDB SQL */
export function angularDistanceSql(ra: string, dec: string, ra0: number, dec0: number): string {
  return `degrees(2 * asin(sqrt(pow(sin(radians(${dec} - (${dec0})) / 2), 2) + cos(radians(${dec})) * cos(radians(${dec0})) * pow(sin(radians(${ra} - (${ra0})) / 2), 2))))`;
}

export const CMD_MAP_SQL =
  'SELECT floor((g_mag - r_mag) / 0.1) * 0.1 AS gr, floor(r_mag / 0.5) * 0.5 AS r, count(*) AS n FROM partition WHERE g_mag IS NOT NULL AND r_mag IS NOT NULL GROUP BY ALL';
export const CMD_REDUCE_SQL = 'SELECT gr, r, sum(n) AS n FROM partials GROUP BY ALL ORDER BY ALL';

const CONE = { ra: 62.0, dec: -37.0, radius_deg: 8.0 };

export const DEMO_STEPS: DemoStep[] = [
  {
    id: 'cmd',
    title: 'catalog.sql with reduce: colour-magnitude histogram of every object',
    spec: (ctx) => ({
      kind: 'catalog.sql',
      name: 'demo colour-magnitude histogram',
      input: { catalog: ctx.catalog },
      params: { map: CMD_MAP_SQL, reduce: CMD_REDUCE_SQL },
      output: { path: join(ctx.outDir, 'cmd-histogram.parquet') },
      resources: { cores: 1, memory_mb: 1024, walltime_s: 600 },
    }),
    async show(ctx, info) {
      const path = info.output!;
      const [tot] = await ctx.query(`SELECT count(*) AS bins, sum(n)::BIGINT AS objects FROM read_parquet(${sq(path)})`);
      out(ctx.rt, `histogram ${relative(ctx.rt.cwd, path)}: ${formatCount(Number(tot?.['bins']))} bins holding ${formatCount(Number(tot?.['objects']))} of ${formatCount(ctx.catalogRows)} objects (the rest lack a g or r detection)`);
      const rows = await ctx.query(`SELECT round(gr::DOUBLE, 1) AS "g-r", round(r::DOUBLE, 1) AS r, n FROM read_parquet(${sq(path)}) ORDER BY n DESC LIMIT 6`);
      out(ctx.rt, renderTable(['g-r', 'r', 'n'], rows.map((x) => [String(x['g-r']), String(x['r']), formatCount(Number(x['n']))]), { alignRight: [0, 1, 2] }));
    },
  },
  {
    id: 'cone',
    title: `catalog.sql in a cone (ra ${CONE.ra}, dec ${CONE.dec}, r ${CONE.radius_deg} deg), bright objects, HATS output`,
    spec: (ctx) => ({
      kind: 'catalog.sql',
      name: 'demo cone of bright objects',
      input: { catalog: ctx.catalog },
      select: { cone: CONE },
      params: { map: `SELECT * FROM partition WHERE r_mag < 24 AND ${angularDistanceSql('ra', 'dec', CONE.ra, CONE.dec)} < ${CONE.radius_deg}` },
      output: { path: join(ctx.outDir, 'cone-bright') },
      resources: { cores: 1, memory_mb: 1024, walltime_s: 600 },
    }),
    async show(ctx, info, results) {
      const root = info.output!;
      const rows = results.files.reduce((s, f) => s + (f.rows ?? 0), 0);
      const props = await readFile(join(root, 'hats.properties'), 'utf8').catch(() => '');
      const nrows = /hats_nrows=(\d+)/.exec(props)?.[1];
      out(ctx.rt, `HATS catalog ${relative(ctx.rt.cwd, root)}: ${results.files.length} leaves, ${formatCount(rows)} rows; hats.properties ${nrows !== undefined ? `says hats_nrows=${nrows}` : 'is missing'}`);
      const top = await ctx.query(
        `SELECT objectId, round(ra, 4) AS ra, round(dec, 4) AS dec, round(r_mag::DOUBLE, 3) AS r_mag FROM read_parquet(${sq(join(root, 'dataset', '**', '*.parquet'))}) ORDER BY r_mag LIMIT 5`,
      );
      out(ctx.rt, renderTable(['objectId', 'ra', 'dec', 'r_mag'], top.map((x) => [String(x['objectId']), String(x['ra']), String(x['dec']), String(x['r_mag'])]), { alignRight: [1, 2, 3] }));
    },
  },
  {
    id: 'command',
    title: 'command per partition: a sandboxed shell command sizing each Parquet leaf',
    spec: (ctx) => ({
      kind: 'command',
      name: 'demo partition sizes',
      input: { catalog: ctx.catalog },
      params: { command: 'wc -c "$UBATCH_INPUT" > "$UBATCH_OUTPUT_DIR/size.txt"' },
      output: { path: join(ctx.outDir, 'partition-sizes') },
      resources: { cores: 1, memory_mb: 256, walltime_s: 120 },
    }),
    async show(ctx, _info, results) {
      const sizes: { task: string; bytes: number; file: string }[] = [];
      for (const f of results.files) {
        const text = await readFile(f.path, 'utf8').catch(() => '');
        const [n, file] = text.trim().split(/\s+/);
        sizes.push({ task: relative(results.output ?? '', f.path).split('/')[0] ?? '', bytes: Number(n), file: file ?? '' });
      }
      const total = sizes.reduce((s, x) => s + (Number.isFinite(x.bytes) ? x.bytes : 0), 0);
      out(ctx.rt, `${sizes.length} size.txt files; the partitions hold ${formatBytes(total)} of Parquet`);
      out(ctx.rt, renderTable(['task', 'leaf', 'bytes'], sizes.slice(0, 4).map((s) => [s.task, relative(ctx.catalog, s.file), formatCount(s.bytes)]), { alignRight: [2] }));
    },
  },
];

export interface DemoOptions {
  rows: number;
  keep: boolean;
  dir?: string;
  workers: number;
  slots: number;
  steps?: string[];
  seed: number;
  /** nats-server authentication (the demo's user, the daemons and the operator each with their own creds) @default true */
  auth?: boolean;
}

export async function runDemo(rt: Runtime, user: string, o: DemoOptions): Promise<boolean> {
  const t0 = performance.now();
  const steps = o.steps ? DEMO_STEPS.filter((s) => o.steps!.includes(s.id)) : DEMO_STEPS;
  const unknown = (o.steps ?? []).filter((id) => !DEMO_STEPS.some((s) => s.id === id) && id !== 'science' && id !== 'images');
  if (unknown.length > 0) throw new CliUsageError(`unknown demo step(s) ${unknown.join(', ')}; steps: ${DEMO_STEPS.map((s) => s.id).join(', ')}`, '--steps');
  const base = o.dir ?? (await mkdtemp(join(tmpdir(), 'ubatch-demo-')));
  const ac = new AbortController();
  let stack: LocalStack | undefined;
  const removeSignals = onShutdownSignals(() => {
    note(rt, '\ninterrupted: stopping the demo stack ...');
    ac.abort();
    void stack?.stop();
  });
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const { survey } = await import('../../astro/index.js');
  const duck = await DuckDBInstance.create(':memory:', { threads: '1' });
  const conn = await duck.connect();
  let allOk = true;
  try {
    out(rt, `ubatch demo in ${base}`);
    const ts = performance.now();
    stack = await startLocalStack({ dir: join(base, 'stack'), workers: o.workers, slots: o.slots, logLevel: 'info', auth: o.auth !== false, users: [user] });
    out(rt, `stack up in ${formatDuration((performance.now() - ts) / 1000)}: ${stack.url}, ${o.workers} workers x ${o.slots} slots (logs in ${join(stack.dir, 'logs')})`);
    out(rt, stack.authDir ? `authentication on: jobs run as ${user} with its own creds (${join(stack.authDir, 'creds')}); the ledger is read as the operator` : 'authentication off (--no-auth)');

    const catalog = join(base, 'data', 'object');
    const tg = performance.now();
    const gen = createProgress({ label: `generating ${formatCount(o.rows)}-row Object catalog`, stream: rt.io.err });
    let cat;
    try {
      cat = await survey.generateObjectCatalog(catalog, {
        rows: o.rows,
        seed: o.seed,
        maxRowsPerPartition: Math.max(5_000, Math.ceil(o.rows / 40)),
        highestOrder: 7,
        signal: ac.signal,
        onProgress: (done, total) => gen.update({ done, failed: 0, total, state: 'writing leaves' }),
      });
    } finally {
      gen.stop();
    }
    out(rt, `catalog ${catalog}: ${formatCount(o.rows)} rows in ${cat.partitions.length} HATS partitions (${formatDuration((performance.now() - tg) / 1000)})`);

    const client = await stack.client(user);
    const ctx: DemoContext = {
      rt,
      stack,
      client,
      catalog,
      catalogRows: o.rows,
      outDir: join(base, 'out'),
      dataDir: join(base, 'data'),
      data: { object: catalog },
      signal: ac.signal,
      query: async (sql) => (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[],
    };
    for (const [i, step] of steps.entries()) {
      if (ac.signal.aborted) break;
      out(rt, `\n== step ${i + 1}/${steps.length}: ${step.title}`);
      if (step.prepare) {
        const tp = performance.now();
        await step.prepare(ctx);
        out(rt, `inputs prepared in ${formatDuration((performance.now() - tp) / 1000)}`);
      }
      const sub = await client.submit(step.spec(ctx));
      out(rt, `submitted job ${sub.jobId} (${formatCount(sub.tasks)} tasks)`);
      const info = await watchJob(rt, client, sub.jobId, { label: step.id });
      out(rt, finalLine(info));
      if (info.state !== 'succeeded') {
        allOk = false;
        for (const f of info.failures.slice(0, 3)) out(rt, `  task ${f.index}: ${f.error.code}: ${f.error.message}`);
        continue;
      }
      await step.show?.(ctx, info, await client.results(sub.jobId));
    }

    // science and image kinds run as their own sequences (they generate their own inputs)
    const extras: { id: string; title: string; run: (c: { client: typeof client; dir: string; log: (line: string) => void }) => Promise<void> }[] = [
      { id: 'science', title: 'periodograms of ForcedSource light curves, and a cross-match with a Gaia-like catalog', run: async (c) => (await import('../demo-science.js')).scienceDemoSteps(c) },
      { id: 'images', title: 'images: background (LSB-preserving), postage stamps, injection and recovery', run: async (c) => (await import('../demo-images.js')).imageDemoSteps(c) },
    ];
    for (const extra of extras) {
      if (ac.signal.aborted || (o.steps && !o.steps.includes(extra.id))) continue;
      out(rt, `\n== ${extra.id}: ${extra.title}`);
      const te = performance.now();
      try {
        await extra.run({ client, dir: join(base, 'data', extra.id), log: (line) => out(rt, line) });
        out(rt, `${extra.id} finished in ${formatDuration((performance.now() - te) / 1000)}`);
      } catch (err) {
        allOk = false;
        out(rt, `${extra.id} failed: ${(err as Error).message}`);
      }
    }

    out(rt, '\n== ledger summary (a replay of UB_LEDGER)');
    // users may not read UB_LEDGER under auth: the summary is an operator's view
    out(rt, renderLedgerSummary(summarizeLedger(await readLedger(await stack.connectAs('operator')))));
  } finally {
    removeSignals();
    conn.closeSync();
    duck.closeSync();
    if (stack) {
      const tstop = performance.now();
      await stack.stop();
      out(rt, `\nstack stopped cleanly in ${formatDuration((performance.now() - tstop) / 1000)}`);
    }
    if (o.keep) out(rt, `kept ${base} (catalog, outputs, logs, JetStream store)`);
    else await rm(base, { recursive: true, force: true });
  }
  out(rt, `demo ${allOk ? 'finished' : 'finished with failed steps'} in ${formatDuration((performance.now() - t0) / 1000)}`);
  return allOk;
}

export function registerDemoCommand(program: Command, rt: Runtime): void {
  program
    .command('demo')
    .description('start the embedded stack, generate a synthetic survey catalog, run example jobs, show results and the ledger, stop')
    .option('--rows <n>', 'rows in the synthetic Object catalog', '1000000')
    .option('--keep', 'keep the demo directory (catalog, outputs, logs) afterwards')
    .option('--dir <dir>', 'demo directory (default: a fresh temporary directory)')
    .option('-w, --workers <n>', 'worker processes', '2')
    .option('--slots <n>', 'task slots per worker', '1')
    .option('--seed <n>', 'catalog generator seed', '1')
    .option('--no-auth', 'run the demo stack without NATS authentication')
    .option('--steps <ids>', `comma-separated subset of the steps (${[...DEMO_STEPS.map((s) => s.id), 'science', 'images'].join(', ')})`)
    .action(async (flags: { rows: string; keep?: boolean; dir?: string; workers: string; slots: string; seed: string; steps?: string; auth: boolean }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      const ok = await runDemo(rt, cfg.user, {
        rows: parseIntOption(flags.rows, '--rows', 100, 1_000_000_000),
        keep: flags.keep === true,
        ...(flags.dir !== undefined ? { dir: resolve(rt.cwd, flags.dir) } : {}),
        workers: parseIntOption(flags.workers, '--workers', 1, 64),
        slots: parseIntOption(flags.slots, '--slots', 1, 64),
        seed: parseIntOption(flags.seed, '--seed', 0, 2 ** 31 - 1),
        auth: flags.auth,
        ...(flags.steps !== undefined ? { steps: parseListOption(flags.steps) } : {}),
      });
      rt.exitCode = ok ? 0 : 1;
    });
}
