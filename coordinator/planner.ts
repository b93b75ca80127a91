/**
 * Planners: JobSpec → tasks. One task per overlapping HATS partition for
 * catalog kinds (restricted by a cone or a pixel list), one per file for a
 * list of files, N indexed tasks for `noop` / `command` with params.tasks.
 * Planning also checks what can be checked before anything runs (inputs
 * exist, SQL binds against the first partition's schema), so bad input is
 * rejected at submit with the field it concerns.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
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

const bad = (code: string, message: string, where: string) => new UbatchApiError(code, message, where);

export async function planJob(spec: JobSpec): Promise<Plan> {
  const capability = KIND_CAPABILITY[spec.kind];
  if (!capability || !PLANNERS[spec.kind]) {
    throw bad(ApiCode.UnknownKind, `unknown job kind ${JSON.stringify(spec.kind)}; known kinds: ${Object.keys(PLANNERS).sort().join(', ')}`, '/kind');
  }
  const plan = await PLANNERS[spec.kind]!(spec);
  if (plan.count === 0) throw bad(ApiCode.InvalidInput, 'the job selects no partitions (nothing to do): check the input and the select block', spec.select ? '/select' : '/input');
  return { ...plan, capability };
}

type Planner = (spec: JobSpec) => Promise<Omit<Plan, 'capability'>>;

const PLANNERS: Record<string, Planner> = {
  noop: async (spec) => {
    const n = (spec.params as { tasks?: unknown } | undefined)?.tasks ?? 1;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_TASKS_PER_JOB) throw bad(ApiCode.InvalidSpec, `params.tasks must be an integer from 1 to ${MAX_TASKS_PER_JOB}`, '/params/tasks');
    const p = (spec.params ?? {}) as { sleep_ms?: number; busy_ms?: number };
    return { count: n, hasReduce: false, estimateCoreSeconds: n * (((p.sleep_ms ?? 0) + (p.busy_ms ?? 0)) / 1000 + 0.001) };
  },
  'catalog.sql': async (spec) => {
    const p = (spec.params ?? {}) as { map?: unknown; reduce?: unknown };
    if (typeof p.map !== 'string' || p.map.trim() === '') throw bad(ApiCode.InvalidSpec, 'params.map must be a SQL query over the table `partition`', '/params/map');
    if (p.reduce !== undefined && (typeof p.reduce !== 'string' || p.reduce.trim() === '')) throw bad(ApiCode.InvalidSpec, 'params.reduce must be a SQL query over the table `partials`', '/params/reduce');
    requireOutput(spec);
    const parts = await catalogPartitions(spec, '/input/catalog');
    await checkSql(p.map, parts[0]!, '/params/map');
    return { count: parts.length, units: parts.map((partition) => ({ partition })), hasReduce: jobHasReduce(spec), estimateCoreSeconds: estimateRows(parts) * 2e-7 + parts.length * 0.05 };
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
  periodogram: (spec) => planPeriodogram(spec),
  crossmatch: (spec) => planCrossmatch(spec),
  ...imagePlanners,
};

function requireOutput(spec: JobSpec): void {
  if (!spec.output?.path) throw bad(ApiCode.InvalidSpec, 'output.path is required for this kind', '/output/path');
}

function estimateRows(parts: PartitionRef[]): number {
  return parts.reduce((s, p) => s + (p.rows ?? 100_000), 0);
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
    cat = await hats.openHatsCatalog(path);
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

/** Bind the query against the first partition's schema (DESCRIBE reads only Parquet metadata). */
async function checkSql(query: string, part: PartitionRef, where: string): Promise<void> {
  const inst = await DuckDBInstance.create(':memory:', { threads: '1' });
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
    conn.closeSync();
    inst.closeSync();
  }
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).replace(/\s+/g, ' ').trim().slice(0, 500);
}
