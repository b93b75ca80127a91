/**
 * Injection + recovery over a collection of images end to end (issue 5, last
 * benchmark bullet): N synthetic calexps (astro/imaging generateImageSurvey:
 * TAN-SIP WCS, stars, galaxies, an LSB galaxy, sky gradient, noise, MASK and
 * VARIANCE planes), indexed with `ubatch images index` (the CLI in dist/, a
 * child process), then one `image.inject` job run two ways with the same spec:
 *   mesh   the embedded stack (nats-server + coordinator + W worker processes of 1 slot),
 *          client side from submit until the job is closed
 *   local  `ubatch run spec.json --parallel W` (the CLI in dist/, a child process, no NATS)
 * Reports wall time, time per image, the completeness curve (injected and
 * recovered per magnitude bin, median measured/injected flux, pull σ) summed
 * over all images, and checks that the mesh and local outputs are equal (every
 * injected source: same position, recovered flag and measured flux).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/image-inject.js [--images 50] [--size 1024] [--sources 200]
 *     [--mag-min 18] [--mag-max 24] [--workers 2] [--skip-local] [--repeats 1]
 * With --repeats R the mesh and local runs alternate R times (medians reported; outputs of the first pair compared).
 *
 * Prints JSON lines and a Markdown summary (for bench/results/image-inject.md).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hats, imaging } from '../astro/index.js';
import { startLocalStack } from '../ops/stack.js';
import type { JobSpec } from '../protocol/index.js';

const { values: args } = parseArgs({
  options: {
    images: { type: 'string', default: '50' },
    size: { type: 'string', default: '1024' },
    sources: { type: 'string', default: '200' },
    'mag-min': { type: 'string', default: '18' },
    'mag-max': { type: 'string', default: '24' },
    workers: { type: 'string', default: '2' },
    'skip-local': { type: 'boolean', default: false },
    repeats: { type: 'string', default: '1' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(args.images);
const SIZE = Number(args.size);
const WORKERS = Number(args.workers);
const cli = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'ops', 'cli.js');
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

function ubatch(argv: string[], cwd: string): { stdout: string; seconds: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, ...argv], { cwd, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, env: { ...process.env, UBATCH_LOG_LEVEL: 'warn' } });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`ubatch ${argv.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return { stdout: r.stdout, seconds };
}

const q = (sql: string) => hats.withDuck(async (c) => (await c.runAndReadAll(sql)).getRowObjectsJS());

interface BinRow {
  mag_min: number;
  mag_max: number;
  n_injected: number;
  n_recovered: number;
  completeness: number | null;
  median_flux_ratio: number | null;
  pull_sigma: number | null;
}

/** The completeness curve of a job's output, summed over its images. */
async function curve(out: string): Promise<BinRow[]> {
  const inj = hats.sqlString(`${out}/task-*/injected.parquet`);
  const rows = await q(`
    WITH b AS (SELECT floor(mag * 2) / 2 AS mag_min, * FROM read_parquet(${inj}) WHERE on_image),
    r AS (SELECT mag_min, measured_flux / flux AS ratio, (measured_flux - flux) / measured_flux_err AS pull FROM b WHERE recovered AND measured_flux_err > 0)
    SELECT b.mag_min, b.mag_min + 0.5 AS mag_max, count(*)::INTEGER AS n_injected, (count(*) FILTER (WHERE recovered))::INTEGER AS n_recovered,
      (SELECT median(ratio) FROM r WHERE r.mag_min = b.mag_min) AS median_flux_ratio,
      (SELECT 1.4826 * median(abs(pull - (SELECT median(pull) FROM r r2 WHERE r2.mag_min = b.mag_min))) FROM r WHERE r.mag_min = b.mag_min) AS pull_sigma
    FROM b GROUP BY b.mag_min ORDER BY b.mag_min`);
  return rows.map((r) => {
    const n = Number(r['n_injected']);
    const k = Number(r['n_recovered']);
    const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    return { mag_min: Number(r['mag_min']), mag_max: Number(r['mag_max']), n_injected: n, n_recovered: k, completeness: n > 0 ? k / n : null, median_flux_ratio: num(r['median_flux_ratio']), pull_sigma: num(r['pull_sigma']) };
  });
}

/** Injected sources of both outputs that differ (position, recovered flag, measured flux), and the row counts. */
async function compare(a: string, b: string): Promise<{ rowsA: number; rowsB: number; differing: number }> {
  const sel = (out: string) => `SELECT regexp_extract(filename, 'task-[0-9]+') AS task, "index", round(x, 6) AS x, round(y, 6) AS y, recovered, preexisting, round(measured_flux, 4) AS mf, round(flux, 4) AS f FROM read_parquet(${hats.sqlString(`${out}/task-*/injected.parquet`)}, filename = true)`;
  const [r] = await q(`SELECT (SELECT count(*) FROM (${sel(a)})) AS na, (SELECT count(*) FROM (${sel(b)})) AS nb,
    (SELECT count(*) FROM ((${sel(a)} EXCEPT ${sel(b)}) UNION ALL (${sel(b)} EXCEPT ${sel(a)}))) AS diff`);
  return { rowsA: Number(r!['na']), rowsB: Number(r!['nb']), differing: Number(r!['diff']) };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ubatch-bench-inject-'));
  const figures: Record<string, unknown> = { bench: 'image-inject', images: N, size: SIZE, sourcesPerImage: Number(args.sources), workers: WORKERS, cores: cpus().length, cpu: cpus()[0]?.model, node: process.version, date: new Date().toISOString() };
  try {
    // 1. the collection: N calexps (visits x 1 detector), IMAGE f32 + MASK i32 + VARIANCE f32
    let t0 = performance.now();
    const survey = await imaging.generateImageSurvey(join(dir, 'survey'), { visits: N, width: SIZE, height: SIZE, seed: 5, writeTruthImages: false });
    figures['generateSeconds'] = +((performance.now() - t0) / 1000).toFixed(2);
    figures['imageMiB'] = +((SIZE * SIZE * 12) / 2 ** 20).toFixed(1);
    console.error(`generated ${survey.images.length} calexps of ${SIZE}x${SIZE} in ${figures['generateSeconds']} s (load ${load()})`);

    // 2. `ubatch images index`
    const idx = ubatch(['images', 'index', join(dir, 'survey', 'calexp'), '--out', join(dir, 'images.parquet'), '--json'], dir);
    const idxDoc = JSON.parse(idx.stdout) as { images: number };
    if (idxDoc.images !== N) throw new Error(`index holds ${idxDoc.images} images, expected ${N}`);
    figures['indexSeconds'] = +idx.seconds.toFixed(2);
    console.error(`indexed in ${idx.seconds.toFixed(2)} s`);

    const spec = (out: string): JobSpec => ({
      kind: 'image.inject',
      input: { images: join(dir, 'images.parquet') },
      params: { sources: { n: Number(args.sources), mag_min: Number(args['mag-min']), mag_max: Number(args['mag-max']), seed: 1 }, mag_bins: 0.5, match_radius_px: 2, threshold_sigma: 5 },
      output: { path: out },
    });

    // 3. mesh (embedded stack, WORKERS worker processes x 1 slot) and 4. local (`ubatch run`), alternating
    const R = Math.max(1, Number(args.repeats));
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
    const stack = await startLocalStack({ dir: join(dir, 'stack'), workers: WORKERS, slots: 1, logLevel: 'warn', writeStackFile: false });
    const meshOut = join(dir, 'mesh-0');
    const localOut = join(dir, 'local-0');
    const meshS: number[] = [];
    const localS: number[] = [];
    const loads: string[] = [];
    try {
      const c = await stack.client('bench');
      // warm-up: one small job (JIT, consumers, DuckDB, the image threads)
      const warm = await c.submit({ ...spec(join(dir, 'warm')), params: { ...(spec('').params as object), visits: [0, WORKERS - 1] } });
      await c.wait(warm.jobId, { timeoutMs: 600_000 });
      for (let r = 0; r < R; r++) {
        loads.push(load());
        t0 = performance.now();
        const sub = await c.submit(spec(join(dir, `mesh-${r}`)));
        const info = await c.wait(sub.jobId, { timeoutMs: 3_600_000 });
        const ms = (performance.now() - t0) / 1000;
        if (info.state !== 'succeeded') throw new Error(`mesh job ${info.state}: ${info.error}`);
        meshS.push(ms);
        console.error(`mesh #${r}: ${ms.toFixed(1)} s (${((ms / N) * 1000).toFixed(0)} ms/image), load ${load()}`);
        if (!args['skip-local']) {
          const specFile = join(dir, `inject-${r}.json`);
          await writeFile(specFile, JSON.stringify(spec(join(dir, `local-${r}`))));
          const lr = ubatch(['run', specFile, '--parallel', String(WORKERS), '--json'], dir);
          const doc = JSON.parse(lr.stdout) as { state: string };
          if (doc.state !== 'succeeded') throw new Error(`local run ${doc.state}`);
          localS.push(lr.seconds);
          console.error(`local #${r}: ${lr.seconds.toFixed(1)} s (${((lr.seconds / N) * 1000).toFixed(0)} ms/image), load ${load()}`);
        }
      }
    } finally {
      await stack.stop().catch(() => undefined);
    }
    figures['mesh'] = { seconds: +median(meshS).toFixed(2), all: meshS.map((x) => +x.toFixed(2)), perImageMs: +((median(meshS) / N) * 1000).toFixed(0), loads };
    if (localS.length > 0) {
      figures['local'] = { seconds: +median(localS).toFixed(2), all: localS.map((x) => +x.toFixed(2)), perImageMs: +((median(localS) / N) * 1000).toFixed(0), parallel: WORKERS };
      figures['meshVsLocal'] = await compare(meshOut, localOut);
      console.error(`mesh vs local: ${JSON.stringify(figures['meshVsLocal'])}`);
    }

    // 5. the completeness curve (mesh output)
    const bins = await curve(meshOut);
    figures['bins'] = bins;
    const tot = bins.reduce((a, b) => ({ n: a.n + b.n_injected, k: a.k + b.n_recovered }), { n: 0, k: 0 });
    figures['injected'] = tot.n;
    figures['recovered'] = tot.k;
    let m50: number | null = null;
    for (const b of bins) if (m50 === null && b.completeness !== null && b.completeness < 0.5 && b.mag_min > Number(args['mag-min']) + 1) m50 = b.mag_min;
    figures['firstBinBelow50pc'] = m50;
    console.log(JSON.stringify(figures));

    const f = (x: number | null, d: number) => (x === null || !Number.isFinite(x) ? '–' : x.toFixed(d));
    console.log('\n| mag | injected | recovered | completeness | median measured/injected flux | pull σ |\n|---|---|---|---|---|---|');
    for (const b of bins) console.log(`| ${b.mag_min.toFixed(1)}–${b.mag_max.toFixed(1)} | ${b.n_injected} | ${b.n_recovered} | ${b.completeness === null ? '–' : `${(b.completeness * 100).toFixed(1)} %`} | ${f(b.median_flux_ratio, 3)} | ${f(b.pull_sigma, 2)} |`);
  } finally {
    if (args.keep) console.error(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

await main();
