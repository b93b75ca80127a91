/**
 * `ubatch images index <dir|files...> --out index.parquet`: scans FITS files
 * (headers only) into an image index (astro/images: one row per science
 * image HDU with visit, detector, band, MJD, footprint and HEALPix coverage)
 * that image jobs take as `input.images`. Runs locally; needs no NATS.
 * Files that cannot be indexed are listed and left out (the index is still
 * written, exit 1); none indexed at all is an error (exit 2).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { images } from '../../astro/index.js';
import { parseIntOption } from '../config.js';
import { CliUsageError, ExitCode } from '../errors.js';
import { formatCount, renderTable } from '../format.js';
import { note, out, outJson, type Runtime } from './runtime.js';

export interface ImageIndexSummary {
  path: string;
  images: number;
  files: number;
  failures: images.ImageIndexFailure[];
  bands: { band: string; images: number; visits: number; detectors: number; mjdMin: number | null; mjdMax: number | null }[];
  /** bounding box of the image centres (deg) */
  ra: [number, number] | null;
  dec: [number, number] | null;
}

/** Per-band counts of an index, for the table. Pure. */
export function summarizeImageIndex(path: string, rows: images.ImageIndexRow[], failures: images.ImageIndexFailure[]): ImageIndexSummary {
  const by = new Map<string, images.ImageIndexRow[]>();
  for (const r of rows) {
    const k = r.band ?? '(none)';
    const l = by.get(k);
    if (l) l.push(r);
    else by.set(k, [r]);
  }
  const bands = [...by.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([band, rs]) => {
      const mjds = rs.map((r) => r.mjd).filter((m): m is number => m !== null);
      return {
        band,
        images: rs.length,
        visits: new Set(rs.map((r) => r.visit).filter((v) => v !== null)).size,
        detectors: new Set(rs.map((r) => r.detector).filter((v) => v !== null)).size,
        mjdMin: mjds.length ? Math.min(...mjds) : null,
        mjdMax: mjds.length ? Math.max(...mjds) : null,
      };
    });
  const ras = rows.map((r) => r.ra);
  const decs = rows.map((r) => r.dec);
  return {
    path,
    images: rows.length,
    files: new Set(rows.map((r) => r.path)).size,
    failures,
    bands,
    ra: rows.length ? [Math.min(...ras), Math.max(...ras)] : null,
    dec: rows.length ? [Math.min(...decs), Math.max(...decs)] : null,
  };
}

export function registerImagesCommands(program: Command, rt: Runtime): void {
  const group = program.commands.find((c) => c.name() === 'images') ?? program.command('images').description('image collections: index FITS images for image.* jobs');
  group
    .command('index')
    .description('index FITS images (headers only) into a Parquet image index for input.images of image jobs')
    .argument('<paths...>', 'a directory (searched recursively) or FITS files')
    .requiredOption('--out <file>', 'the index to write (.parquet; replaced atomically)')
    .option('--healpix-order <k>', 'order of the HEALPix coverage column', '8')
    .option('--no-recursive', 'do not descend into sub-directories')
    .option('--json', 'print the summary as one JSON document')
    .addHelpText(
      'after',
      `
Columns: path, hdu, extname, visit, detector, band, mjd, width, height, ra, dec,
corner_ra, corner_dec, pixel_scale_arcsec, healpix_order, healpix.

Example:
  ubatch images index data/calexp --out data/images.parquet
  ubatch run image-background.yaml      # input: { images: data/images.parquet }`,
    )
    .action(async (paths: string[], flags: { out: string; healpixOrder: string; recursive: boolean; json?: boolean }) => {
      const order = parseIntOption(flags.healpixOrder, '--healpix-order', 0, 20);
      const outPath = resolve(rt.cwd, flags.out);
      if (!outPath.toLowerCase().endsWith('.parquet')) throw new CliUsageError(`--out must name a .parquet file, got ${flags.out}`, '--out');
      const inputs = paths.map((p) => resolve(rt.cwd, p));
      const missing = inputs.find((p) => !existsSync(p));
      if (missing) throw new CliUsageError(`no such file or directory: ${missing}`);
      const rows: images.ImageIndexRow[] = [];
      const failures: images.ImageIndexFailure[] = [];
      for (const p of inputs) {
        const r = await images.indexImagesWithFailures(p, {
          healpixOrder: order,
          recursive: flags.recursive,
          onFailure: (f) => {
            if (!flags.json) note(rt, `ubatch: skipped ${f.path}${f.hdu !== undefined ? ` HDU ${f.hdu}` : ''}: ${f.reason}`);
          },
        });
        rows.push(...r.rows);
        failures.push(...r.failures);
      }
      if (rows.length === 0) throw new CliUsageError(`no FITS image with a celestial WCS found in ${inputs.join(', ')}${failures.length ? ` (${failures.length} file(s) could not be read)` : ''}`);
      await images.writeImageIndex(rows, outPath);
      const s = summarizeImageIndex(outPath, rows, failures);
      if (failures.length > 0) rt.exitCode = ExitCode.failed;
      if (flags.json) return outJson(rt, s);
      out(rt, `indexed ${formatCount(s.images)} image(s) from ${formatCount(s.files)} file(s) into ${outPath}${failures.length ? `; ${failures.length} skipped (listed above)` : ''}`);
      out(
        rt,
        renderTable(
          ['band', 'images', 'visits', 'detectors', 'mjd from', 'mjd to'],
          s.bands.map((b) => [b.band, formatCount(b.images), formatCount(b.visits), formatCount(b.detectors), b.mjdMin?.toFixed(3) ?? '-', b.mjdMax?.toFixed(3) ?? '-']),
          { alignRight: [1, 2, 3, 4, 5] },
        ),
      );
      if (s.ra && s.dec) out(rt, `centres within ra ${s.ra[0].toFixed(4)}..${s.ra[1].toFixed(4)}, dec ${s.dec[0].toFixed(4)}..${s.dec[1].toFixed(4)} deg`);
    });
}

/** The name the lead's brief used. */
export const register = registerImagesCommands;
