/**
 * Planners: JobSpec → tasks. One task per overlapping HATS partition for
 * catalog kinds (restricted by a cone or a pixel list), one per file for a
 * list of files, N indexed tasks for `noop` / `command` with params.tasks.
 * `catalog.sql` packs small partitions into fewer, bigger tasks (see
 * `batchPartitions`): a task's fixed cost (a sandboxed DuckDB, checksums,
 * dispatch, commit) is paid per task, not per partition.
 * Planning also checks what can be checked before anything runs (inputs
 * exist, SQL binds against the first partition's schema), so bad input is
 * rejected at submit with the field it concerns. Opened catalogs and bind
 * checks are cached per file version, so repeat submissions plan fast.
 */
import { existsSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { hats, tables } from '../astro/index.js';
import { ApiCode, jobHasReduce, KIND_CAPABILITY, UbatchApiError, type JobSpec, type PartitionRef } from '../protocol/index.js';
import type { PlanUnit } from './jobs.js';
import { planCrossmatch, planPeriodogram } from './planners-science.js';
import { imagePlanners } from './planners-images.js';

export interface Plan {
  capability: string;
  /** number of map tasks */
  count: number;
  units?: PlanUnit[];
  hasReduce: boolean;
  /** a rough cost estimate for quotas and dry runs */
  estimateCoreSeconds: number;
}

export const MAX_TASKS_PER_JOB = 10_000_000;

/** What the planner may know about the pool (the coordinator passes the live worker slots). */
export interface PlanContext {
  /** task slots of the live workers (all capabilities); 0 or absent when unknown */
  slots?: number;
}

/**
 * catalog.sql: a task takes small partitions together until it holds about this many rows
 * (params.rows_per_task). Each task costs ~50-100 ms of fixed work (a sandboxed DuckDB, dispatch,
 * ledger, commit) and one DuckDB thread scans ~15-30 M rows/s of a light query, so tasks of a few
 * million rows spend a large share on that overhead: 16 M rows a task measured +11 % (heavy) and
 * +38 % (light) against one DuckDB query over 32 M rows where 2 M measured +54 % / +180 %
 * (bench/results/catalog-sql.md). There is still at least one task per live worker slot.
 */
export const DEFAULT_ROWS_PER_TASK = 16_000_000;
/** catalog.sql: the share of rows planned as 2 × slots small tasks at the end (params.tail_fraction; see batchPartitions) */
export const DEFAULT_TAIL_FRACTION = 0;
/** slots assumed when the pool is unknown (no live worker yet, or a caller without a pool) */
export const DEFAULT_PLAN_SLOTS = 4;
/** rows assumed for a partition whose row count is not in the catalog's metadata */
const UNKNOWN_PARTITION_ROWS = 100_000;

const bad = (code: string, message: string, where: string) => new UbatchApiError(code, message, where);

export async function planJob(spec: JobSpec, ctx: PlanContext = {}): Promise<Plan> {
  const capability = KIND_CAPABILITY[spec.kind];
  if (!capability || !PLANNERS[spec.kind]) {
    throw bad(ApiCode.UnknownKind, `unknown job kind ${JSON.stringify(spec.kind)}; known kinds: ${Object.keys(PLANNERS).sort().join(', ')}`, '/kind');
  }
  const plan = await PLANNERS[spec.kind]!(spec, ctx);
  if (plan.count === 0) throw bad(ApiCode.InvalidInput, 'the job selects no partitions (nothing to do): check the input and the select block', spec.select ? '/select' : '/input');
  return { ...plan, capability };
}

type Planner = (spec: JobSpec, ctx: PlanContext) => Promise<Omit<Plan, 'capability'>>;

const PLANNERS: Record<string, Planner> = {
  noop: async (spec) => {
    const n = (spec.params as { tasks?: unknown } | undefined)?.tasks ?? 1;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_TASKS_PER_JOB) throw bad(ApiCode.InvalidSpec, `params.tasks must be an integer from 1 to ${MAX_TASKS_PER_JOB}`, '/params/tasks');
    const p = (spec.params ?? {}) as { sleep_ms?: number; busy_ms?: number; reduce_sleep_ms?: unknown };
    const rs = p.reduce_sleep_ms;
    if (rs !== undefined && (typeof rs !== 'number' || !Number.isInteger(rs) || rs < 0 || rs > 3_600_000)) throw bad(ApiCode.InvalidSpec, 'params.reduce_sleep_ms must be an integer from 0 to 3600000', '/params/reduce_sleep_ms');
    return { count: n, hasReduce: rs !== undefined, estimateCoreSeconds: n * (((p.sleep_ms ?? 0) + (p.busy_ms ?? 0)) / 1000 + 0.001) + (rs ?? 0) / 1000 };
  },
  'catalog.sql': async (spec, ctx) => {
    const p = (spec.params ?? {}) as { map?: unknown; reduce?: unknown; tail_fraction?: unknown };
    if (typeof p.map !== 'string' || p.map.trim() === '') throw bad(ApiCode.InvalidSpec, 'params.map must be a SQL query over the table `partition`', '/params/map');
    if (p.reduce !== undefined && (typeof p.reduce !== 'string' || p.reduce.trim() === '')) throw bad(ApiCode.InvalidSpec, 'params.reduce must be a SQL query over the table `partials`', '/params/reduce');
    const batching = batchOptions(p, ctx, DEFAULT_ROWS_PER_TASK);
    const tail = p.tail_fraction;
    if (tail !== undefined && (typeof tail !== 'number' || !(tail >= 0 && tail <= 0.5))) throw bad(ApiCode.InvalidSpec, 'params.tail_fraction must be a number from 0 to 0.5 (the share of rows planned as small tasks at the end)', '/params/tail_fraction');
    requireOutput(spec);
    const parts = await catalogPartitions(spec, '/input/catalog');
    await checkSql(p.map, parts[0]!, '/params/map');
    const groups = batchPartitions(parts, { ...batching, tailFraction: tail ?? DEFAULT_TAIL_FRACTION });
    return { count: groups.length, units: groups.map(batchUnit), hasReduce: jobHasReduce(spec), estimateCoreSeconds: estimateRows(parts) * 2e-7 + groups.length * 0.05 };
  },
  command: async (spec) => {
    const p = (spec.params ?? {}) as { command?: unknown; tasks?: unknown };
    if (!(typeof p.command === 'string' && p.command.trim() !== '') && !(Array.isArray(p.command) && p.command.length > 0 && p.command.every((x) => typeof x === 'string'))) {
      throw bad(ApiCode.InvalidSpec, 'params.command must be a non-empty string (run by sh -c) or an argv array of strings', '/params/command');
    }
    requireOutput(spec);
    const walltime = spec.resources?.walltime_s ?? 3600;
    const input = spec.input ?? {};
    if (input.catalog !== undefined) {
      const parts = await catalogPartitions(spec, '/input/catalog');
      return { count: parts.length, units: parts.map((partition) => ({ partition })), hasReduce: false, estimateCoreSeconds: parts.length * Math.min(walltime, 60) };
    }
    if (input.files !== undefined) {
      if (!Array.isArray(input.files) || input.files.length === 0 || !input.files.every((f) => typeof f === 'string')) throw bad(ApiCode.InvalidSpec, 'input.files must be a non-empty list of paths', '/input/files');
      const units = (input.files as string[]).map((f, i) => {
        const abs = resolve(f);
        if (!existsSync(abs)) throw bad(ApiCode.InputNotFound, `input file not found: ${abs}`, `/input/files/${i}`);
        return { partition: { order: -1, pixel: i, files: [abs] } };
      });
      return { count: units.length, units, hasReduce: false, estimateCoreSeconds: units.length * Math.min(walltime, 60) };
    }
    const n = p.tasks ?? 1;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 100_000) throw bad(ApiCode.InvalidSpec, 'params.tasks must be an integer from 1 to 100000', '/params/tasks');
    return { count: n, hasReduce: false, estimateCoreSeconds: n * Math.min(walltime, 60) };
  },
  periodogram: (spec, ctx) => planPeriodogram(spec, ctx),
  crossmatch: (spec, ctx) => planCrossmatch(spec, ctx),
  ...imagePlanners,
};

function requireOutput(spec: JobSpec): void {
  if (!spec.output?.path) throw bad(ApiCode.InvalidSpec, 'output.path is required for this kind', '/output/path');
}

function estimateRows(parts: PartitionRef[]): number {
  return parts.reduce((s, p) => s + (p.rows ?? UNKNOWN_PARTITION_ROWS), 0);
}

export interface BatchOptions {
  /** task slots of the pool: at least this many tasks (when there are as many partitions) so every slot has work */
  slots: number;
  /** a task gathers small partitions until it holds about this many rows */
  rowsPerTask: number;
  /** exactly this many partitions per task (the user's override; 1 = one task per partition) */
  partitionsPerTask?: number;
  /** this share of the rows (0–0.5) goes into 2 × slots small tasks at the end (params.tail_fraction) */
  tailFraction?: number;
}

/**
 * How a kind that packs partitions into tasks (catalog.sql, periodogram, crossmatch) batches a job:
 * the validated params.rows_per_task (default `defaultRows`) and params.partitions_per_task, and the
 * live worker slots (DEFAULT_PLAN_SLOTS when the pool is unknown).
 */
export function batchOptions(params: Record<string, unknown>, ctx: PlanContext, defaultRows: number): BatchOptions {
  const perTask = params.partitions_per_task;
  if (perTask !== undefined && !(Number.isInteger(perTask) && (perTask as number) >= 1 && (perTask as number) <= 100_000)) throw bad(ApiCode.InvalidSpec, 'params.partitions_per_task must be an integer from 1 to 100000 (1: one task per partition)', '/params/partitions_per_task');
  const rows = params.rows_per_task;
  if (rows !== undefined && !(Number.isInteger(rows) && (rows as number) >= 1)) throw bad(ApiCode.InvalidSpec, 'params.rows_per_task must be a positive integer (the rows a task gathers from small partitions)', '/params/rows_per_task');
  return {
    slots: ctx.slots && ctx.slots > 0 ? ctx.slots : DEFAULT_PLAN_SLOTS,
    rowsPerTask: (rows as number | undefined) ?? defaultRows,
    ...(perTask !== undefined ? { partitionsPerTask: perTask as number } : {}),
  };
}

/**
 * Groups partitions into tasks: consecutive partitions (spatially close in
 * HATS order), balanced by rows. The task count is the rows over
 * `rowsPerTask`, at least `slots` (so every slot has work), at most one per
 * partition, and rounded up to a multiple of `slots` when there are several
 * rounds so the last round is not half empty. Partitions of `rowsPerTask`
 * rows or more stay on their own.
 */
export function batchPartitions<T extends { rows?: number }>(parts: readonly T[], o: BatchOptions): T[][] {
  const n = parts.length;
  if (n === 0) return [];
  if (o.partitionsPerTask !== undefined) {
    const k = Math.max(1, Math.floor(o.partitionsPerTask));
    const out: T[][] = [];
    for (let i = 0; i < n; i += k) out.push(parts.slice(i, i + k));
    return out;
  }
  const slots = Math.max(1, Math.floor(o.slots));
  const rows = parts.map((p) => Math.max(1, p.rows ?? UNKNOWN_PARTITION_ROWS));
  const total = rows.reduce((a, b) => a + b, 0);
  let k = Math.max(Math.ceil(total / Math.max(1, o.rowsPerTask)), Math.min(n, slots));
  if (k > slots) k = Math.ceil(k / slots) * slots;
  k = Math.min(k, n);
  if (k === n) return parts.map((p) => [p]);
  // cut points in cumulative rows: k equal tasks, or k equal tasks over the first (1 - tail) of the rows and
  // 2 × slots small ones over the tail, so a slot whose big task ran slow leaves the tail to the others
  const tail = Math.min(0.5, Math.max(0, o.tailFraction ?? 0));
  const cuts: number[] = [];
  if (tail > 0 && n >= k + 2 * slots) {
    const main = total * (1 - tail);
    for (let j = 1; j <= k; j++) cuts.push((main / k) * j);
    for (let j = 1; j < 2 * slots; j++) cuts.push(main + ((total - main) / (2 * slots)) * j);
  } else for (let j = 1; j < k; j++) cuts.push((total / k) * j);
  // consecutive groups: partition i goes to the group its row midpoint falls in
  const out: T[][] = [];
  let cum = 0;
  let g = 0;
  let last = -1;
  for (const [i, p] of parts.entries()) {
    const mid = cum + rows[i]! / 2;
    while (g < cuts.length && mid >= cuts[g]!) g++;
    cum += rows[i]!;
    if (g !== last || out.length === 0) {
      out.push([p]);
      last = g;
    } else out[out.length - 1]!.push(p);
  }
  return out;
}

/** A task's unit: one partition as is; several as the union of their files plus the list (the executor writes one leaf each). */
export function batchUnit(group: PartitionRef[]): PlanUnit {
  if (group.length === 1) return { partition: group[0]! };
  const first = group[0]!;
  const rows = group.every((p) => p.rows !== undefined) ? group.reduce((s, p) => s + p.rows!, 0) : undefined;
  return {
    partition: { order: first.order, pixel: first.pixel, files: group.flatMap((p) => p.files), ...(rows !== undefined ? { rows } : {}) },
    unit: { partitions: group },
  };
}

/** The partitions a catalog job covers: a HATS catalog (filtered by select) or a single Parquet/CSV file. */
export async function catalogPartitions(spec: JobSpec, where: string): Promise<PartitionRef[]> {
  const raw = spec.input?.catalog ?? spec.input?.file;
  if (typeof raw !== 'string' || raw === '') throw bad(ApiCode.InvalidSpec, 'input.catalog must be the path of a HATS catalog directory or a .parquet/.csv file', where);
  const path = resolve(raw);
  if (!existsSync(path)) throw bad(ApiCode.InputNotFound, `input not found: ${path}`, where);
  if (statSync(path).isFile()) {
    const ext = extname(path).toLowerCase();
    if (!['.parquet', '.parq', '.csv', '.tsv'].includes(ext) && !path.endsWith('.csv.gz')) throw bad(ApiCode.InvalidInput, `input file ${path} is neither Parquet nor CSV`, where);
    return [{ order: -1, pixel: 0, files: [path] }];
  }
  let cat: hats.HatsCatalog;
  try {
    cat = await openCatalogCached(path, { margin: false }); // the partitions do not depend on a margin
  } catch (err) {
    throw bad(ApiCode.InvalidInput, `${path} is not a readable HATS catalog: ${(err as Error).message}`, where);
  }
  let parts = cat.partitions.filter((p) => p.files.length > 0);
  if (parts.length === 0) throw bad(ApiCode.InvalidInput, `HATS catalog ${path} has no data partitions`, where);
  const sel = spec.select;
  if (sel?.cone) parts = hats.partitionsInCone({ ...cat, partitions: parts }, sel.cone.ra, sel.cone.dec, sel.cone.radius_deg);
  if (sel?.pixels) parts = hats.partitionsForPixels({ ...cat, partitions: parts }, sel.pixels.order, sel.pixels.pixels);
  return parts.map((p) => ({ order: p.order, pixel: p.pixel, files: p.files, ...(p.rows !== undefined ? { rows: p.rows } : {}) }));
}

const CATALOG_CACHE_MAX = 64;
const CATALOG_CACHE_TTL_MS = 10 * 60_000;
const catalogCache = new Map<string, { version: string; at: number; cat: hats.HatsCatalog }>();

/** What changes when a HATS catalog is rewritten: its directory, metadata files and leaf directory, a collection's properties. */
const CATALOG_FILES = ['', 'properties', 'hats.properties', 'collection.properties', 'partition_info.csv', 'dataset', 'dataset/_metadata', 'dataset/_common_metadata'];

async function filesVersion(paths: string[]): Promise<string> {
  const st = await Promise.all(paths.map((p) => stat(p).then((s) => `${s.size}:${s.mtimeMs}`, () => '-')));
  return st.join('|');
}

const ownVersion = (root: string) => filesVersion(CATALOG_FILES.map((n) => join(root, n)));

/**
 * The margin part of a catalog's version when a margin was `wanted`: the attached margin's own files or, none found,
 * the parent directory (a sibling margin catalog built later). The parent is not watched otherwise: outputs written
 * beside a catalog would make every plan miss.
 */
const marginVersion = (root: string, wanted: boolean, marginRoot: string | undefined) =>
  !wanted ? Promise.resolve('') : filesVersion(marginRoot ? CATALOG_FILES.map((n) => join(marginRoot, n)) : [dirname(root)]);

/**
 * openHatsCatalog, cached per catalog version (its own files, and its margin's: marginVersion) and options, at most
 * 10 minutes: planning a job over a catalog that did not change does not read its metadata again (≈ 25–30 ms for a
 * catalog with its margin).
 * The catalog's own files are versioned before it is opened (a rewrite while it opens makes the next plan reopen it);
 * the margin, known only once opened, after. Callers must not change the returned catalog.
 */
export async function openCatalogCached(path: string, opts: { margin?: boolean; rowCounts?: 'auto' | 'footers' | 'none' } = {}): Promise<hats.HatsCatalog> {
  const root = resolve(path);
  const wanted = opts.margin ?? true;
  const key = JSON.stringify([root, wanted, opts.rowCounts ?? 'auto']);
  const own = await ownVersion(root);
  const hit = catalogCache.get(key);
  if (hit && Date.now() - hit.at < CATALOG_CACHE_TTL_MS && hit.version === `${own}#${await marginVersion(root, wanted, hit.cat.margin?.root)}`) return hit.cat;
  const cat = await hats.openHatsCatalog(root, { ...opts, margin: wanted });
  const version = `${own}#${await marginVersion(root, wanted, cat.margin?.root)}`;
  if (catalogCache.size >= CATALOG_CACHE_MAX) catalogCache.delete(catalogCache.keys().next().value!);
  catalogCache.set(key, { version, at: Date.now(), cat });
  return cat;
}

const boundQueries = new Map<string, true>();

/** Bind the query against the first partition's schema (DESCRIBE reads only Parquet metadata); a query that bound against the same file version is not checked again. */
async function checkSql(query: string, part: PartitionRef, where: string): Promise<void> {
  const versions = await Promise.all(part.files.map((f) => stat(f).then((s) => `${s.size}:${s.mtimeMs}`, () => '-')));
  const key = JSON.stringify([query, part.files, versions]);
  if (boundQueries.has(key)) return;
  await bindSql(query, part, where);
  if (boundQueries.size >= 1000) boundQueries.clear();
  boundQueries.set(key, true);
}

/** a DuckDB created ahead for the next bind check (creating one takes ≈ 25 ms) */
let spareDuck: Promise<DuckDBInstance> | undefined;
async function takeDuck(): Promise<DuckDBInstance> {
  const p = spareDuck ?? DuckDBInstance.create(':memory:', { threads: '1' });
  spareDuck = DuckDBInstance.create(':memory:', { threads: '1' });
  spareDuck.catch(() => (spareDuck = undefined));
  return p;
}

async function bindSql(query: string, part: PartitionRef, where: string): Promise<void> {
  const inst = await takeDuck();
  const conn = await inst.connect();
  try {
    try {
      await conn.run(`CREATE VIEW "partition" AS SELECT * FROM ${tables.readFilesSql(part.files)}`);
    } catch (err) {
      throw bad(ApiCode.InvalidInput, `cannot read partition ${part.files[0]}: ${firstLine(err)}`, '/input/catalog');
    }
    const dirs = [...new Set(part.files.map((f) => dirname(f) + '/'))];
    await conn.run(`SET allowed_directories = [${dirs.map(tables.sqlString).join(', ')}]`);
    await conn.run('SET enable_external_access = false');
    await conn.run('SET lock_configuration = true');
    try {
      await conn.run(`DESCRIBE (${query.trim().replace(/;+\s*$/, '')})`);
    } catch (err) {
      const msg = firstLine(err);
      if (/Permission Error|disabled by configuration/i.test(msg)) throw bad(ApiCode.Forbidden, `the query reads files outside its input: ${msg}`, where);
      throw bad(ApiCode.InvalidSpec, `SQL error: ${msg}`, where);
    }
  } finally {
    // closing takes 15–30 ms of synchronous work: after the submit has been answered
    setTimeout(() => {
      conn.closeSync();
      inst.closeSync();
    }, 50).unref?.();
  }
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).replace(/\s+/g, ' ').trim().slice(0, 500);
}
