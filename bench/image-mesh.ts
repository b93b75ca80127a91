/**
 * Mesh overhead of image.background (issue 5): N synthetic calexps, sky
 * background per image, four ways in the same run:
 *   bare   read FITS + estimateBackground + write the subtracted calexp, one image after another
 *          in this process (the executor's work without any of ubatch)
 *   local  `ubatch run` (ops/local-run.ts): the planner + executor in this process, no NATS, 1 task at a time
 *   mesh1  the embedded stack (nats-server + coordinator + 1 worker process, 1 slot; `node dist/...`),
 *          client-side from submit until the job is closed
 *   mesh2  the same with 2 worker processes of 1 slot each
 * Runs alternate; medians are compared (ratios to bare).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/image-mesh.js [--images 8] [--size 1024] [--mode mesh|lsb] [--repeats 3]
 *
 * Needs the image kinds registered in worker/executors/index.ts and coordinator/planner.ts.
 * Prints one JSON line per figure and a summary.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fits, images, imaging } from '../astro/index.js';
import { runLocally } from '../ops/local-run.js';
import { startLocalStack, type LocalStack } from '../ops/stack.js';
import type { JobSpec } from '../protocol/index.js';

const { values: args } = parseArgs({ options: { images: { type: 'string', default: '8' }, size: { type: 'string', default: '1024' }, mode: { type: 'string', default: 'mesh' }, repeats: { type: 'string', default: '3' } } });
const N = Number(args.images);
const SIZE = Number(args.size);
const MODE = args.mode === 'lsb' ? 'lsb' : 'mesh';
const REPEATS = Number(args.repeats);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function bare(paths: string[], outDir: string): Promise<number> {
  const t0 = performance.now();
  for (const [i, p] of paths.entries()) {
    const hdus = await fits.readFits(p);
    const [im, mk, vr] = [hdus[1]!, hdus[2]!, hdus[3]!];
    const [w, h] = im.shape as [number, number];
    const img: imaging.Image = { width: w, height: h, data: im.data as Float32Array, mask: mk.data as Int32Array, variance: vr.data as Float32Array };
    const bg = imaging.estimateBackground(img, { mode: MODE });
    const sub = new Float32Array(w * h);
    for (let k = 0; k < sub.length; k++) sub[k] = img.data[k]! - bg.background[k]!;
    await fits.writeFits(join(outDir, `bare-${i}.fits`), [
      { header: hdus[0]!.header, data: null },
      { header: im.header, data: sub, shape: [w, h], bitpix: -32, name: 'IMAGE' },
      { header: mk.header, data: img.mask!, shape: [w, h], bitpix: 32, name: 'MASK' },
      { header: vr.header, data: img.variance!, shape: [w, h], bitpix: -32, name: 'VARIANCE' },
    ]);
  }
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ubatch-bench-image-'));
  const stacks: LocalStack[] = [];
  try {
    const survey = await imaging.generateImageSurvey(join(dir, 'survey'), { visits: N, width: SIZE, height: SIZE, seed: 2, writeTruthImages: false });
    const index = join(dir, 'images.parquet');
    await images.writeImageIndex(await images.indexImages(join(dir, 'survey', 'calexp')), index);
    const paths = survey.images.map((e) => e.path);
    const spec = (out: string): JobSpec => ({ kind: 'image.background', input: { images: index }, params: { mode: MODE }, output: { path: out } });
    const stack1 = await startLocalStack({ dir: join(dir, 'stack1'), workers: 1, slots: 1, logLevel: 'warn', writeStackFile: false });
    stacks.push(stack1);
    const stack2 = await startLocalStack({ dir: join(dir, 'stack2'), workers: 2, slots: 1, logLevel: 'warn', writeStackFile: false });
    stacks.push(stack2);
    const c1 = await stack1.client('bench');
    const c2 = await stack2.client('bench');
    const mesh = async (c: typeof c1, out: string) => {
      const t0 = performance.now();
      const sub = await c.submit(spec(out));
      const info = await c.wait(sub.jobId, { timeoutMs: 900_000 });
      if (info.state !== 'succeeded') throw new Error(`mesh job ${info.state}: ${info.error}`);
      return (performance.now() - t0) / 1000;
    };
    // warm-up (JIT, consumers, DuckDB)
    await bare(paths.slice(0, 1), dir);
    await mesh(c1, join(dir, 'warm1'));
    await mesh(c2, join(dir, 'warm2'));
    const t: Record<'bare' | 'local' | 'mesh1' | 'mesh2', number[]> = { bare: [], local: [], mesh1: [], mesh2: [] };
    for (let r = 0; r < REPEATS; r++) {
      t.bare.push(await bare(paths, dir));
      const t0 = performance.now();
      const lr = await runLocally(spec(join(dir, `local-${r}`)), { parallel: 1 });
      if (lr.state !== 'succeeded') throw new Error(`local run ${lr.state}: ${lr.error}`);
      t.local.push((performance.now() - t0) / 1000);
      t.mesh1.push(await mesh(c1, join(dir, `mesh1-${r}`)));
      t.mesh2.push(await mesh(c2, join(dir, `mesh2-${r}`)));
    }
    const b = median(t.bare);
    const rows = (['bare', 'local', 'mesh1', 'mesh2'] as const).map((k) => ({
      bench: 'image-mesh',
      kind: 'image.background',
      mode: MODE,
      images: N,
      size: SIZE,
      how: k,
      seconds_median: +median(t[k]).toFixed(3),
      seconds_all: t[k].map((x) => +x.toFixed(3)),
      per_image_ms: +((median(t[k]) / N) * 1000).toFixed(1),
      ratio_to_bare: +(median(t[k]) / b).toFixed(3),
    }));
    for (const r of rows) console.log(JSON.stringify(r));
    console.error(`\nimage.background (${MODE}) over ${N} images of ${SIZE}x${SIZE}, ${REPEATS} repeats, ${cpus().length} cores:`);
    for (const r of rows) console.error(`  ${r.how.padEnd(6)} ${r.seconds_median.toFixed(2).padStart(7)} s  ${r.per_image_ms.toFixed(0).padStart(6)} ms/image  x${r.ratio_to_bare.toFixed(2)} of bare`);
    console.error(`  mesh overhead per image (mesh1 - bare) / N: ${(((median(t.mesh1) - b) / N) * 1000).toFixed(0)} ms`);
  } finally {
    for (const s of stacks) await s.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
