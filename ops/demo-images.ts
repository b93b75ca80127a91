/**
 * The image part of `ubatch demo`: a small synthetic survey (4 visits of one
 * 1024×1024 detector, r band, with a faint LSB galaxy) indexed into an image
 * collection, then the three image kinds as real jobs on the mesh:
 * image.background (LSB-preserving sky), image.stamps (every epoch of the
 * brightest stars, PNG previews and multi-epoch stacks) and image.inject
 * (completeness per magnitude). Each step logs a few lines about its results.
 * Throws when a job does not succeed.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { images, imaging } from '../astro/index.js';
import type { JobInfo, JobSpec, UbatchClient } from '../protocol/index.js';

export interface ImageDemoContext {
  client: UbatchClient;
  /** where the survey and the job outputs go */
  dir: string;
  log: (line: string) => void;
  /** @default 4 */
  visits?: number;
  /** image side in pixels @default 1024 */
  size?: number;
  /** per-job wait @default 300000 ms */
  timeoutMs?: number;
}

const fmt = (v: unknown, digits = 2) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '-');

async function runJob(ctx: ImageDemoContext, spec: JobSpec): Promise<{ info: JobInfo; summaries: unknown[] }> {
  const sub = await ctx.client.submit(spec);
  ctx.log(`${spec.kind}: job ${sub.jobId}, ${sub.tasks} task(s)`);
  const info = await ctx.client.wait(sub.jobId, { timeoutMs: ctx.timeoutMs ?? 300_000 });
  if (info.state !== 'succeeded') throw new Error(`${spec.kind} job ${sub.jobId} ended ${info.state}: ${info.error ?? 'no error message'}`);
  const res = await ctx.client.results(sub.jobId);
  return { info, summaries: res.summaries.map((s) => s.summary) };
}

export async function imageDemoSteps(ctx: ImageDemoContext): Promise<void> {
  const size = ctx.size ?? 1024;
  const surveyDir = join(ctx.dir, 'image-survey');
  await mkdir(surveyDir, { recursive: true });
  const survey = await imaging.generateImageSurvey(surveyDir, { visits: ctx.visits ?? 4, width: size, height: size, seed: 11 });
  const index = join(surveyDir, 'images.parquet');
  const rows = await images.indexImages(join(surveyDir, 'calexp'));
  await images.writeImageIndex(rows, index);
  ctx.log(`image survey: ${rows.length} calexps of ${size}x${size} px (visits ${rows.map((r) => r.visit).join(', ')}), index ${index}`);

  // 1. sky background, LSB-preserving
  const bg = await runJob(ctx, { kind: 'image.background', name: 'demo LSB-preserving sky', input: { images: index }, params: { mode: 'lsb', write_model: true }, output: { path: join(ctx.dir, 'image-background') } });
  for (const s of bg.summaries as { visit: number | null; global_back: number; global_rms: number; calexp: string }[]) {
    ctx.log(`  visit ${s.visit}: sky ${fmt(s.global_back, 1)} ADU, noise ${fmt(s.global_rms, 2)} ADU -> ${s.calexp}`);
  }

  // 2. stamps of the brightest stars on the first epoch, every epoch, with stacks
  const first = survey.images[0]!;
  const inner = (ra: number, dec: number) => {
    const [xs, ys] = [first.footprint.map((p) => p[0]), first.footprint.map((p) => p[1])];
    const pad = 0.1 * (Math.max(...ys) - Math.min(...ys));
    return ra > Math.min(...xs) + pad && ra < Math.max(...xs) - pad && dec > Math.min(...ys) + pad && dec < Math.max(...ys) - pad;
  };
  const targets = survey.truth
    .filter((t) => t.kind === 'star' && inner(t.ra, t.dec))
    .sort((a, b) => (a.mags['r'] ?? 99) - (b.mags['r'] ?? 99))
    .slice(0, 6)
    .map((t) => ({ id: `star${t.id}`, ra: t.ra, dec: t.dec }));
  const st = await runJob(ctx, { kind: 'image.stamps', name: 'demo star stamps', input: { images: index }, params: { targets, size: 48, png: true, stack: true, skip_uncovered: true }, output: { path: join(ctx.dir, 'image-stamps') } });
  const stampsMade = (st.summaries as { stamps: number; stacks: number }[]).reduce((a, s) => [a[0]! + s.stamps, a[1]! + s.stacks], [0, 0]);
  ctx.log(`  ${stampsMade[0]} stamps (FITS + PNG) of ${targets.length} stars, ${stampsMade[1]} multi-epoch stacks under ${join(ctx.dir, 'image-stamps')}`);

  // 3. injection-recovery
  const inj = await runJob(ctx, {
    kind: 'image.inject',
    name: 'demo completeness',
    input: { images: index },
    params: { sources: { n: 200, mag_min: 18, mag_max: 24, seed: 3 }, mag_bins: 1 },
    output: { path: join(ctx.dir, 'image-inject') },
  });
  const bins = new Map<number, { n: number; k: number; max: number }>();
  for (const s of inj.summaries as { bins: { magMin: number; magMax: number; nInjected: number; nRecovered: number }[] }[]) {
    for (const b of s.bins) {
      const cur = bins.get(b.magMin) ?? { n: 0, k: 0, max: b.magMax };
      cur.n += b.nInjected;
      cur.k += b.nRecovered;
      bins.set(b.magMin, cur);
    }
  }
  ctx.log(`  completeness over ${inj.summaries.length} image(s): ${[...bins.entries()].sort((a, b) => a[0] - b[0]).map(([lo, b]) => `${lo}-${b.max}: ${fmt(b.k / Math.max(1, b.n), 2)}`).join(', ')}`);
}
