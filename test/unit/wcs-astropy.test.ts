/**
 * TanSipWcs against astropy.wcs (all_pix2world / all_world2pix, origin 0):
 * <= 1 mas on random pixels for TAN and TAN-SIP headers, including astropy's
 * own SIP test headers, a rotated CD matrix, PC+CDELT, CROTA2 and fields at and near the pole.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FitsHeader, formatCard, parseHeaderCards, type FitsCard } from '../../astro/fits/index.js';
import { TanSipWcs } from '../../astro/wcs/index.js';
import { ASTROPY_WCS_DATA, SKIP_ASTROPY_MSG, pythonHas, runRef } from './ref/fits-python.js';

const haveAstropy = pythonHas('astropy.wcs', 'numpy');
if (!haveAstropy) console.warn(`wcs-astropy: ${SKIP_ASTROPY_MSG}`);

const MAS = 1 / 3.6e6; // degrees

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Angular separation in degrees (haversine). */
function sepDeg(a: [number, number], b: [number, number]): number {
  const d2r = Math.PI / 180;
  const [ra1, de1] = [a[0] * d2r, a[1] * d2r];
  const [ra2, de2] = [b[0] * d2r, b[1] * d2r];
  const h = Math.sin((de2 - de1) / 2) ** 2 + Math.cos(de1) * Math.cos(de2) * Math.sin((ra2 - ra1) / 2) ** 2;
  return (2 * Math.asin(Math.min(1, Math.sqrt(h)))) / d2r;
}

function cardsText(cards: FitsCard[]): string {
  return cards.flatMap((c) => formatCard(c)).join('') + 'END'.padEnd(80);
}

/** A .hdr file from astropy's test data: 80-char cards, with or without newlines. */
function hdrText(path: string): string {
  const raw = readFileSync(path, 'latin1');
  if (!raw.includes('\n')) return raw;
  return raw
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.padEnd(80).slice(0, 80))
    .join('');
}

/** Header text of a FITS file's primary HDU. */
function fitsHeaderText(path: string): string {
  const raw = readFileSync(path, 'latin1');
  const end = raw.search(/END {77}/);
  return raw.slice(0, Math.ceil((end + 1) / 80) * 80);
}

interface Case {
  name: string;
  header: string;
  naxis: [number, number];
}

const base = (crval: [number, number], cd: [[number, number], [number, number]], extra: FitsCard[] = [], sip = false): FitsCard[] => [
  { key: 'NAXIS', value: 2 },
  { key: 'NAXIS1', value: 2048 },
  { key: 'NAXIS2', value: 4096 },
  { key: 'CTYPE1', value: sip ? 'RA---TAN-SIP' : 'RA---TAN' },
  { key: 'CTYPE2', value: sip ? 'DEC--TAN-SIP' : 'DEC--TAN' },
  { key: 'CRPIX1', value: 1024.5 },
  { key: 'CRPIX2', value: 2048.25 },
  { key: 'CRVAL1', value: crval[0] },
  { key: 'CRVAL2', value: crval[1] },
  { key: 'CD1_1', value: cd[0][0] },
  { key: 'CD1_2', value: cd[0][1] },
  { key: 'CD2_1', value: cd[1][0] },
  { key: 'CD2_2', value: cd[1][1] },
  ...extra,
];

const s = 0.2 / 3600; // 0.2"/pix
const rot = (deg: number, flip = -1): [[number, number], [number, number]] => {
  const t = (deg * Math.PI) / 180;
  return [[flip * s * Math.cos(t), -s * Math.sin(t)], [flip * s * Math.sin(t), s * Math.cos(t)]];
};

const sipCards: FitsCard[] = [
  { key: 'A_ORDER', value: 3 },
  { key: 'A_2_0', value: 2.1e-6 },
  { key: 'A_1_1', value: -1.3e-6 },
  { key: 'A_0_2', value: 4.2e-7 },
  { key: 'A_3_0', value: 1.1e-10 },
  { key: 'A_1_2', value: -3.0e-11 },
  { key: 'B_ORDER', value: 3 },
  { key: 'B_2_0', value: -8.0e-7 },
  { key: 'B_1_1', value: 1.9e-6 },
  { key: 'B_0_2', value: -2.2e-6 },
  { key: 'B_0_3', value: 7.5e-11 },
  { key: 'B_2_1', value: 2.5e-11 },
];

function cases(): Case[] {
  const out: Case[] = [
    { name: 'TAN, plain CD', header: cardsText(base([150.1, 2.2], [[-s, 0], [0, s]])), naxis: [2048, 4096] },
    { name: 'TAN, rotated CD near RA=0', header: cardsText(base([359.95, -30], rot(33.3))), naxis: [2048, 4096] },
    { name: 'TAN, rotated unflipped CD', header: cardsText(base([45, 60], rot(-120, 1))), naxis: [2048, 4096] },
    { name: 'TAN near the north pole', header: cardsText(base([10, 89.95], rot(12))), naxis: [2048, 4096] },
    { name: 'TAN at the south pole', header: cardsText(base([0, -90], rot(0))), naxis: [2048, 4096] },
    { name: 'TAN at the north pole, LONPOLE 90', header: cardsText(base([200, 90], rot(5), [{ key: 'LONPOLE', value: 90 }])), naxis: [2048, 4096] },
    {
      name: 'TAN, PC + CDELT',
      header: cardsText(
        base([80, -70], [[1, 0], [0, 1]]).filter((c) => !c.key.startsWith('CD')).concat([
          { key: 'CDELT1', value: -s },
          { key: 'CDELT2', value: s },
          { key: 'PC1_1', value: 0.8 },
          { key: 'PC1_2', value: -0.6 },
          { key: 'PC2_1', value: 0.6 },
          { key: 'PC2_2', value: 0.8 },
        ]),
      ),
      naxis: [2048, 4096],
    },
    {
      name: 'TAN, CDELT + CROTA2',
      header: cardsText(
        base([300, 15], [[1, 0], [0, 1]]).filter((c) => !c.key.startsWith('CD')).concat([
          { key: 'CDELT1', value: -s },
          { key: 'CDELT2', value: s * 1.1 },
          { key: 'CROTA2', value: 27.5 },
        ]),
      ),
      naxis: [2048, 4096],
    },
    { name: 'TAN-SIP synthetic, no inverse', header: cardsText(base([210, -45], rot(77), sipCards, true)), naxis: [2048, 4096] },
    { name: 'TAN-SIP synthetic near the pole', header: cardsText(base([123, 88.9], rot(-40), sipCards, true)), naxis: [2048, 4096] },
  ];
  for (const f of ['sip.fits', 'sip2.fits']) {
    const p = join(ASTROPY_WCS_DATA, f);
    if (existsSync(p)) out.push({ name: `astropy ${f}`, header: fitsHeaderText(p), naxis: [256, 256] });
  }
  for (const [f, ax] of [['siponly.hdr', [2048, 4096]], ['irac_sip.hdr', [256, 256]]] as const) {
    const p = join(ASTROPY_WCS_DATA, f);
    if (existsSync(p)) out.push({ name: `astropy ${f}`, header: hdrText(p), naxis: [ax[0], ax[1]] });
  }
  return out;
}

interface RefOut {
  p2w: [number, number][];
  w2p: [number, number][];
  footprint: [number, number][];
}

describe.skipIf(!haveAstropy)('TanSipWcs vs astropy.wcs', () => {
  const all = cases();
  const rnd = lcg(2024);
  const inputs = all.map((c) => {
    const pix: [number, number][] = [];
    for (let i = 0; i < 200; i++) pix.push([rnd() * (c.naxis[0] + 20) - 10.5, rnd() * (c.naxis[1] + 20) - 10.5]);
    pix.push([0, 0], [c.naxis[0] - 1, c.naxis[1] - 1]);
    return { header: c.header, pix, naxis: c.naxis };
  });
  // sky positions for the inverse: astropy's images of the pixels
  const first = JSON.parse(runRef('wcs_ref.py', [], JSON.stringify(inputs.map((i) => ({ ...i, sky: [] }))))) as RefOut[];
  const ref = JSON.parse(runRef('wcs_ref.py', [], JSON.stringify(inputs.map((i, k) => ({ ...i, sky: first[k]?.p2w ?? [] }))))) as RefOut[];

  it('covers the astropy SIP headers', () => {
    expect(all.map((c) => c.name)).toEqual(expect.arrayContaining(['astropy sip.fits', 'astropy siponly.hdr']));
  });

  it.each(all.map((c, k) => [c.name, k] as const))('%s: pixel -> sky and sky -> pixel within 1 mas', (_name, k) => {
    const c = all[k] as Case;
    const input = inputs[k] as (typeof inputs)[number];
    const r = ref[k] as RefOut;
    const wcs = TanSipWcs.fromHeader(new FitsHeader(parseHeaderCards(c.header).cards));
    const scaleDeg = wcs.pixelScaleArcsec() / 3600;
    let worstSky = 0;
    let worstPix = 0;
    input.pix.forEach(([x, y], i) => {
      const ours = wcs.pixelToSky(x, y);
      worstSky = Math.max(worstSky, sepDeg(ours, r.p2w[i] as [number, number]));
      const [sra, sdec] = r.p2w[i] as [number, number];
      const [px, py] = wcs.skyToPixel(sra, sdec);
      const [ax, ay] = r.w2p[i] as [number, number];
      worstPix = Math.max(worstPix, Math.hypot(px - ax, py - ay), Math.hypot(px - x, py - y));
    });
    console.info(`${c.name}: worst pixel->sky ${(worstSky / MAS).toExponential(2)} mas, sky->pixel ${((worstPix * scaleDeg) / MAS).toExponential(2)} mas`);
    expect(worstSky / MAS, 'pixel->sky worst separation in mas').toBeLessThanOrEqual(1);
    expect((worstPix * scaleDeg) / MAS, 'sky->pixel worst error in mas').toBeLessThanOrEqual(1);
    const fp = wcs.footprint(c.naxis[0], c.naxis[1]);
    fp.forEach((corner, i) => expect(sepDeg(corner, r.footprint[i] as [number, number]) / MAS).toBeLessThanOrEqual(1));
  });
});
