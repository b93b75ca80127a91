/**
 * Writing a HATS margin cache for a catalog: for every partition, the rows of
 * the other partitions that lie within `thresholdArcsec` of it, in a sibling
 * catalog of type `margin` (the layout hats-import writes and LSDB reads).
 *
 * Like hats-import, margin partitions are also written for the empty sky next
 * to the catalog (the coarsest pixels holding no partition), so left rows just
 * outside the right catalog's footprint still see right rows across the edge.
 * Membership uses healpy-style inclusive disc queries, so a margin may hold a
 * few rows slightly beyond the threshold but never misses one within it.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { DOUBLE, DuckDBScalarFunction, VARCHAR } from '@duckdb/node-api';
import { ang2pix, MAX_SAFE_ORDER, neighbours, queryDisc } from '../healpix/index.js';
import {
  ensureScalarFunction,
  hatsLeafPath,
  openHatsCatalog,
  readParquetSql,
  sqlIdent,
  sqlString,
  withDuck,
  writeHatsMetadata,
  type HatsCatalog,
} from '../hats/index.js';
import { CrossmatchCatalogError, CrossmatchOptionError, throwIfAborted } from './errors.js';
import type { PixelRef } from './partition.js';

export interface WriteMarginCacheOptions {
  /** Rows within this distance of a partition (outside it) go into its margin. Must be > 0. */
  thresholdArcsec: number;
  /** Output directory. @default `<catalog root>_margin` (found by openHatsCatalog) */
  outDir?: string;
  /** @default `<catalog name>_margin` */
  name?: string;
  signal?: AbortSignal;
  /** Called after each margin leaf is written. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Pixels that tile the sky together with the partitions: the partitions
 * themselves plus the coarsest pixels that hold no partition.
 */
export function coveringTargets(partitions: readonly PixelRef[]): { partitions: PixelRef[]; empty: PixelRef[] } {
  const parts = new Set(partitions.map((p) => `${p.order}/${p.pixel}`));
  const maxOrder = partitions.reduce((m, p) => Math.max(m, p.order), 0);
  // pixels (at every order up to maxOrder) that contain some partition
  const ancestors = new Set<string>();
  for (const p of partitions) {
    for (let k = p.order - 1; k >= 0; k--) ancestors.add(`${k}/${Math.floor(p.pixel / 4 ** (p.order - k))}`);
  }
  const empty: PixelRef[] = [];
  const visit = (order: number, pixel: number): void => {
    const key = `${order}/${pixel}`;
    if (parts.has(key)) return;
    if (!ancestors.has(key) || order >= maxOrder) {
      empty.push({ order, pixel });
      return;
    }
    for (let c = 0; c < 4; c++) visit(order + 1, 4 * pixel + c);
  };
  for (let p = 0; p < 12; p++) visit(0, p);
  return { partitions: partitions.map((p) => ({ order: p.order, pixel: p.pixel })), empty };
}

/** Deepest order whose pixels are comfortably wider than the threshold (so a row's disc stays within its pixel's neighbours). */
function prefilterOrder(thresholdArcsec: number): number {
  let order = -1;
  for (let k = 0; k <= MAX_SAFE_ORDER; k++) {
    const sideArcsec = Math.sqrt((4 * Math.PI) / (12 * 4 ** k)) * (180 / Math.PI) * 3600;
    if (sideArcsec >= 8 * thresholdArcsec) order = k;
  }
  return order;
}

/** Builds the per-row function: the margin pixels a position belongs to, as "order/pixel;...". */
export function makeMarginAssigner(partitions: readonly PixelRef[], thresholdArcsec: number): (ra: number, dec: number) => string[] {
  const { empty } = coveringTargets(partitions);
  const all = [...partitions, ...empty];
  const byOrder = new Map<number, Set<number>>();
  for (const t of all) {
    let s = byOrder.get(t.order);
    if (!s) byOrder.set(t.order, (s = new Set()));
    s.add(t.pixel);
  }
  const orders = [...byOrder.keys()].sort((a, b) => a - b);
  const maxOrder = orders.at(-1) ?? 0;
  const thrDeg = thresholdArcsec / 3600;
  const mo = prefilterOrder(thresholdArcsec);
  const usePrefilter = mo >= maxOrder;
  /** The tiling pixel (partition or empty pixel) containing pixel `pix` at order `order >= maxOrder`. */
  const targetOf = (order: number, pix: number): string => {
    for (const k of orders) {
      const p = Math.floor(pix / 4 ** (order - k));
      if (byOrder.get(k)!.has(p)) return `${k}/${p}`;
    }
    return '';
  };
  const interior = new Map<number, boolean>();
  return (ra: number, dec: number): string[] => {
    let own = '';
    if (usePrefilter) {
      const q = ang2pix(mo, ra, dec);
      own = targetOf(mo, q);
      let inside = interior.get(q);
      if (inside === undefined) {
        inside = neighbours(mo, q).every((n) => n < 0 || targetOf(mo, n) === own);
        if (interior.size > 1_000_000) interior.clear(); // bound the cache on huge catalogs
        interior.set(q, inside);
      }
      if (inside) return [];
    } else {
      own = targetOf(maxOrder, ang2pix(maxOrder, ra, dec));
    }
    const out: string[] = [];
    for (const k of orders) {
      const set = byOrder.get(k)!;
      for (const p of queryDisc(k, ra, dec, thrDeg, { inclusive: true })) {
        const key = `${k}/${p}`;
        if (set.has(p) && key !== own) out.push(key);
      }
    }
    return out;
  };
}

let fnCounter = 0;

/** Writes the margin cache of `catalog` and returns it opened. */
export async function writeMarginCache(catalog: HatsCatalog, options: WriteMarginCacheOptions): Promise<HatsCatalog> {
  const thr = options.thresholdArcsec;
  if (!Number.isFinite(thr) || thr <= 0) throw new CrossmatchOptionError('thresholdArcsec', thr, 'must be a finite number > 0');
  const outDir = resolve(options.outDir ?? `${catalog.root}_margin`);
  if (existsSync(outDir) && (await readdir(outDir)).length > 0) {
    throw new CrossmatchCatalogError(outDir, 'margin output directory exists and is not empty');
  }
  const files = catalog.partitions.flatMap((p) => p.files);
  if (files.length === 0) throw new CrossmatchCatalogError(catalog.root, 'has no leaf files to build a margin from');
  const assign = makeMarginAssigner(catalog.partitions, thr);
  const fnName = `xm_margin_targets_${process.pid}_${++fnCounter}`;
  const stage = `xm_margin_stage_${process.pid}_${fnCounter}`;
  throwIfAborted(options.signal, 'margin cache');
  await mkdir(outDir, { recursive: true });
  try {
    const written = await withDuck(async (conn) => {
      ensureScalarFunction(conn, fnName, () =>
        DuckDBScalarFunction.create({
          name: fnName,
          returnType: VARCHAR,
          parameterTypes: [DOUBLE, DOUBLE],
          mainFunction: (_info, chunk, out) => {
            const ra = chunk.getColumnVector(0);
            const dec = chunk.getColumnVector(1);
            for (let i = 0; i < chunk.rowCount; i++) {
              const a = ra.getItem(i);
              const d = dec.getItem(i);
              out.setItem(i, typeof a === 'number' && typeof d === 'number' ? assign(a, d).join(';') : '');
            }
            out.flush();
          },
        }),
      );
      const raCol = sqlIdent(catalog.raColumn);
      const decCol = sqlIdent(catalog.decColumn);
      await conn.run(
        `CREATE TEMP TABLE ${stage} AS SELECT * FROM (` +
          `SELECT *, unnest(string_split(t.__xm_targets, ';')) AS __xm_target FROM (` +
          `SELECT *, ${fnName}(${raCol}, ${decCol}) AS __xm_targets FROM ${readParquetSql(files)}) t ` +
          `WHERE t.__xm_targets <> '')`,
      );
      try {
        const targets = (await conn.runAndReadAll(`SELECT __xm_target, count(*)::BIGINT FROM ${stage} GROUP BY 1 ORDER BY 1`))
          .getRows()
          .map(([t, n]) => {
            const [o, p] = String(t).split('/').map(Number);
            return { order: o!, pixel: p!, rows: Number(n), key: String(t) };
          })
          .sort((a, b) => a.order - b.order || a.pixel - b.pixel);
        const healpixCol = catalog.healpixColumn ?? '_healpix_29';
        const sortCol = (await conn.runAndReadAll(`DESCRIBE ${stage}`)).getRows().some((r) => r[0] === healpixCol)
          ? sqlIdent(healpixCol)
          : `${raCol}, ${decCol}`;
        for (let i = 0; i < targets.length; i++) {
          throwIfAborted(options.signal, 'margin cache');
          const t = targets[i]!;
          const leaf = hatsLeafPath(outDir, t.order, t.pixel);
          await mkdir(dirname(leaf), { recursive: true });
          await conn.run(
            `COPY (SELECT * EXCLUDE (__xm_targets, __xm_target) FROM ${stage} WHERE __xm_target = ${sqlString(t.key)} ORDER BY ${sortCol}) ` +
              `TO ${sqlString(leaf)} (FORMAT parquet, COMPRESSION zstd)`,
          );
          options.onProgress?.(i + 1, targets.length);
        }
        return targets;
      } finally {
        await conn.run(`DROP TABLE IF EXISTS ${stage}`);
      }
    });
    await writeHatsMetadata(outDir, {
      name: options.name ?? `${catalog.name}_margin`,
      type: 'margin',
      raColumn: catalog.raColumn,
      decColumn: catalog.decColumn,
      partitions: written.map(({ order, pixel, rows }) => ({ order, pixel, rows })),
      extraProperties: {
        hats_primary_table_url: basename(catalog.root),
        hats_margin_threshold: String(thr),
      },
    });
    return await openHatsCatalog(outDir, { margin: false });
  } catch (err) {
    await rm(outDir, { recursive: true, force: true });
    throw err;
  }
}


