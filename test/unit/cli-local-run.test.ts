// `ubatch run` (ops/local-run.ts): the same spec run in-process, without NATS, on a small generated
// HATS catalog. The reduced histogram must equal a direct DuckDB query over the same files.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hats, survey } from '../../astro/index.js';
import { runLocally } from '../../ops/local-run.js';
import { runCli } from '../../ops/commands/program.js';
import { CMD_MAP_SQL, CMD_REDUCE_SQL } from '../../ops/commands/demo.js';

let dir: string;
let catalog: string;
let duck: DuckDBInstance;

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const conn = await duck.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ubatch-cli-local-'));
  catalog = join(dir, 'object');
  await survey.generateObjectCatalog(catalog, { rows: 6000, seed: 11, maxRowsPerPartition: 900, highestOrder: 4 });
  duck = await DuckDBInstance.create(':memory:', { threads: '1' });
});
afterAll(async () => {
  duck?.closeSync();
  await rm(dir, { recursive: true, force: true });
});

describe('runLocally', () => {
  it('catalog.sql with reduce: the histogram equals a direct DuckDB query over the same files', async () => {
    const progress: string[] = [];
    const out = join(dir, 'cmd.parquet');
    const r = await runLocally(
      { kind: 'catalog.sql', name: 'cmd', input: { catalog }, params: { map: CMD_MAP_SQL, reduce: CMD_REDUCE_SQL, partitions_per_task: 1 }, output: { path: out } },
      { parallel: 2, onProgress: (p) => progress.push(`${p.done}/${p.total} ${p.state}`) },
    );
    const cat = await hats.openHatsCatalog(catalog);
    const nParts = cat.partitions.filter((p) => p.files.length > 0).length;
    expect(nParts).toBeGreaterThan(3);
    expect(r.state).toBe('succeeded');
    expect(r.total).toBe(nParts + 1);
    expect(r.done).toBe(nParts + 1);
    expect(r.files.at(-1)?.path).toBe(out);
    expect(progress.at(-1)).toBe(`${nParts + 1}/${nParts + 1} succeeded`);
    expect(progress).toContain(`${nParts}/${nParts + 1} reducing`);

    const leaves = `read_parquet('${catalog}/dataset/**/*.parquet')`;
    const direct = await query(
      `SELECT floor((g_mag - r_mag) / 0.1) * 0.1 AS gr, floor(r_mag / 0.5) * 0.5 AS r, count(*) AS n FROM ${leaves} WHERE g_mag IS NOT NULL AND r_mag IS NOT NULL GROUP BY ALL ORDER BY ALL`,
    );
    const ours = await query(`SELECT gr, r, n FROM read_parquet('${out}') ORDER BY ALL`);
    expect(ours.length).toBeGreaterThan(50);
    expect(ours.map((x) => [x['gr'], x['r'], Number(x['n'])])).toEqual(direct.map((x) => [x['gr'], x['r'], Number(x['n'])]));
    expect(r.rows).toBe(direct.length);
    // attempt directories are gone; partials stay beside the output, as on the mesh
    await expect(stat(join(`${out}.ubatch`, 'tmp'))).rejects.toThrow();
    expect((await stat(join(`${out}.ubatch`, 'partials', '0', 'part.parquet'))).isFile()).toBe(true);
  });

  it('catalog.sql without reduce writes a HATS catalog with metadata', async () => {
    const out = join(dir, 'bright');
    const r = await runLocally({ kind: 'catalog.sql', name: 'bright', input: { catalog }, params: { map: 'SELECT * FROM partition WHERE r_mag < 24' }, output: { path: out } });
    expect(r.state).toBe('succeeded');
    const [direct] = await query(`SELECT count(*) AS n FROM read_parquet('${catalog}/dataset/**/*.parquet') WHERE r_mag < 24`);
    expect(r.rows).toBe(Number(direct?.['n']));
    const cat = await hats.openHatsCatalog(out);
    expect(cat.partitions.reduce((s, p) => s + (p.rows ?? 0), 0)).toBe(r.rows);
    const props = await readFile(join(out, 'hats.properties'), 'utf8');
    expect(props).toContain(`hats_nrows=${r.rows}`);
    expect(props).toContain(`ubatch_job_id=${r.jobId}`);
  });

  it('command: one run per partition, outputs committed per task, a failing task makes the job partial', async () => {
    const out = join(dir, 'sizes');
    const r = await runLocally({
      kind: 'command',
      input: { catalog },
      params: { command: 'wc -c < "$UBATCH_INPUT" > "$UBATCH_OUTPUT_DIR/size.txt"; echo "task $UBATCH_TASK_INDEX"; [ "$UBATCH_TASK_INDEX" != 1 ] || { echo boom >&2; exit 3; }' },
      output: { path: out },
      resources: { max_attempts: 1, walltime_s: 60 },
    });
    expect(r.state).toBe('partial');
    expect(r.failed).toBe(1);
    expect(r.failures[0]).toMatchObject({ index: 1, attempt: 1, error: { code: 'command_failed' } });
    expect(r.failures[0]?.error.message).toMatch(/exited with code 3.*boom/);
    expect(r.files.length).toBe(r.done);
    const cat = await hats.openHatsCatalog(catalog);
    for (const f of r.files) {
      const m = /task-(\d+)\/size\.txt$/.exec(f.path);
      expect(m).not.toBeNull();
      const leaf = cat.partitions[Number(m![1])]!.files[0]!;
      expect(Number((await readFile(f.path, 'utf8')).trim())).toBe((await stat(leaf)).size);
    }
    const s = r.summaries[0]?.summary as { exitCode: number; logs: { stdout: string } };
    expect(s.exitCode).toBe(0);
    expect((await readFile(s.logs.stdout, 'utf8')).trim()).toMatch(/^task \d+$/);
  });

  it('ubatch run --json prints one JSON document and exits by the final state', async () => {
    const spec = join(dir, 'noop.yaml');
    await writeFile(spec, 'kind: noop\nparams: { tasks: 3, fail_indexes: [2], fail_retryable: false }\n');
    const out = new PassThrough();
    const err = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    err.resume();
    const code = await runCli(['node', 'ubatch', 'run', spec, '--json', '-p', '2'], { io: { out, err }, env: {}, cwd: dir });
    expect(code).toBe(1);
    const doc = JSON.parse(text) as { state: string; done: number; failed: number; failures: { index: number; error: { code: string } }[] };
    expect(doc).toMatchObject({ state: 'partial', done: 2, failed: 1 });
    expect(doc.failures[0]).toMatchObject({ index: 2, error: { code: 'deliberate_failure' } });
  });

  it('rejects an invalid spec with the field it concerns', async () => {
    await expect(runLocally({ kind: 'catalog.sql', input: { catalog }, params: { map: 'SELECT nosuch FROM partition' }, output: { path: join(dir, 'x') } })).rejects.toMatchObject({ code: 'invalid_spec', where: '/params/map' });
    await expect(runLocally({ kind: 'nosuchkind' })).rejects.toMatchObject({ code: 'unknown_kind' });
  });
});
