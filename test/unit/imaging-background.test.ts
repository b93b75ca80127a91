import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  compileBackgroundOptions,
  estimateBackground,
  ImagingAbortedError,
  ImagingOptionError,
  InsufficientDataError,
  lsbFluxLoss,
  lsbRegion,
  makeSyntheticImage,
  MaskBit,
  skyRmsError,
  DEFAULT_BAD_MASK,
} from '../../astro/imaging/index.js';
import { imagingPythonHas, runReferenceBackground } from './ref/imaging-python.js';

const tmp = mkdtempSync(join(tmpdir(), 'imaging-bg-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const hasSep = imagingPythonHas('sep', 'numpy');

describe('compileBackgroundOptions', () => {
  it('fills defaults', () => {
    const o = compileBackgroundOptions();
    expect(o).toMatchObject({ mode: 'mesh', boxWidth: 64, boxHeight: 64, filterX: 3, filterY: 3, maskBits: DEFAULT_BAD_MASK });
    expect(o.lsb.iterations).toBe(3);
    expect(compileBackgroundOptions({ boxSize: [32, 48], filterSize: 5 })).toMatchObject({ boxWidth: 32, boxHeight: 48, filterX: 5, filterY: 5 });
  });
  it('rejects bad values', () => {
    expect(() => compileBackgroundOptions({ boxSize: 2 })).toThrow(ImagingOptionError);
    expect(() => compileBackgroundOptions({ filterSize: 4 })).toThrow(/odd/);
    expect(() => compileBackgroundOptions({ lsb: { iterations: 0 } })).toThrow(ImagingOptionError);
    expect(() => compileBackgroundOptions({ mode: 'x' as 'mesh' })).toThrow(ImagingOptionError);
  });
});

describe('mesh background', () => {
  it('recovers a flat sky and its noise exactly enough', () => {
    const s = makeSyntheticImage({ width: 256, height: 256, seed: 11, nStars: 0, nGalaxies: 0, withLsbGalaxy: false, skyGradient: [0, 0], skyCurvature: 0, badColumns: 0 });
    const bg = estimateBackground(s.image);
    expect(bg.meshWidth).toBe(4);
    expect(Math.abs(bg.globalBack - 1000)).toBeLessThan(1.5);
    expect(Math.abs(bg.globalRms - s.skyNoise) / s.skyNoise).toBeLessThan(0.03);
    expect(skyRmsError(bg.background, s.trueSky)).toBeLessThan(1.5);
  });

  it('ignores masked pixels and fails clearly when everything is masked', () => {
    const s = makeSyntheticImage({ width: 128, height: 128, seed: 2, nStars: 0, nGalaxies: 0, withLsbGalaxy: false, badColumns: 0 });
    const mask = new Int32Array(128 * 128);
    const data = Float32Array.from(s.image.data);
    for (let i = 0; i < 128 * 64; i++) {
      mask[i] = MaskBit.BAD;
      data[i] = 1e6; // garbage under the mask must not matter
    }
    const bg = estimateBackground({ width: 128, height: 128, data, mask }, { boxSize: 32 });
    const upper = new Uint8Array(128 * 128).fill(1, 128 * 64);
    expect(skyRmsError(bg.background, s.trueSky, upper)).toBeLessThan(4);
    // Masked boxes are filled from their neighbours: the masked garbage never leaks in.
    expect(Math.max(...bg.background)).toBeLessThan(1100);
    mask.fill(MaskBit.BAD);
    expect(() => estimateBackground({ width: 128, height: 128, data, mask }, { boxSize: 32 })).toThrow(InsufficientDataError);
  });

  it('writes into caller-owned output arrays and honours an extra ignore map', () => {
    const s = makeSyntheticImage({ width: 192, height: 128, seed: 6, nStars: 5, nGalaxies: 0, withLsbGalaxy: false });
    const fresh = estimateBackground(s.image, { boxSize: 32 });
    const output = { background: new Float32Array(192 * 128), rms: new Float32Array(192 * 128) };
    const reused = estimateBackground(s.image, { boxSize: 32, output });
    expect(reused.background).toBe(output.background);
    expect(reused.rms).toBe(output.rms);
    expect(Array.from(reused.background)).toEqual(Array.from(fresh.background));
    expect(() => estimateBackground(s.image, { output: { background: new Float32Array(5) } })).toThrow(/output.background/);
    // Ignoring the left half: the left boxes are filled from the right ones.
    const ignore = new Uint8Array(192 * 128);
    const data = Float32Array.from(s.image.data);
    for (let y = 0; y < 128; y++) for (let x = 0; x < 96; x++) {
      ignore[y * 192 + x] = 1;
      data[y * 192 + x] = 5e4;
    }
    const bg = estimateBackground({ ...s.image, data }, { boxSize: 32, ignore });
    expect(Math.max(...bg.background)).toBeLessThan(1100);
  });

  it('honours an aborted signal', () => {
    const s = makeSyntheticImage({ width: 128, height: 128, seed: 2, nStars: 0, nGalaxies: 0, withLsbGalaxy: false });
    const ac = new AbortController();
    ac.abort();
    expect(() => estimateBackground(s.image, { signal: ac.signal })).toThrow(ImagingAbortedError);
    expect(() => estimateBackground(s.image, { mode: 'lsb', signal: ac.signal })).toThrow(ImagingAbortedError);
  });

  it('reports progress per mesh row', () => {
    const s = makeSyntheticImage({ width: 256, height: 256, seed: 2, nStars: 0, nGalaxies: 0, withLsbGalaxy: false });
    const calls: Array<[number, number]> = [];
    estimateBackground(s.image, { onProgress: (d, t) => calls.push([d, t]) });
    expect(calls.at(-1)).toEqual([4, 4]);
  });

  describe.skipIf(!hasSep)('against sep (/usr/bin/python3)', () => {
    it('is close to sep on a source-free image with the same box/filter', () => {
      const w = 512;
      const s = makeSyntheticImage({ width: w, height: w, seed: 5, nStars: 0, nGalaxies: 0, withLsbGalaxy: false, badColumns: 0 });
      const f = join(tmp, 'flat.f32');
      writeFileSync(f, s.image.data);
      for (const [box, filter] of [[64, 3], [50, 1]] as const) {
        const ref = runReferenceBackground(f, w, w, tmp, ['sep'], { box, filter }).get('sep')!;
        const ours = estimateBackground(s.image, { boxSize: box, filterSize: filter, maskBits: 0 });
        let maxDiff = 0;
        let maxRmsDiff = 0;
        for (let i = 0; i < w * w; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(ours.background[i]! - ref.back[i]!));
          maxRmsDiff = Math.max(maxRmsDiff, Math.abs(ours.rms[i]! - ref.rms[i]!));
        }
        // Close (well under the 1.5-ADU box-level noise), not identical: sep's y-grid sits half a pixel off.
        expect(maxDiff).toBeLessThan(1);
        expect(maxRmsDiff).toBeLessThan(0.6);
        expect(Math.abs(ours.globalBack - ref.globalback)).toBeLessThan(0.3);
        expect(Math.abs(ours.globalRms - ref.globalrms)).toBeLessThan(0.1);
      }
    });

    it('has a sky error no worse than 1.1x sep on an image with sources', () => {
      const w = 512;
      const s = makeSyntheticImage({ width: w, height: w, seed: 8, withLsbGalaxy: false });
      const f = join(tmp, 'src.f32');
      const m = join(tmp, 'src.u8');
      writeFileSync(f, s.image.data);
      const maskBytes = new Uint8Array(w * w);
      for (let i = 0; i < w * w; i++) if ((s.image.mask[i]! & DEFAULT_BAD_MASK) !== 0) maskBytes[i] = 1;
      writeFileSync(m, maskBytes);
      const ref = runReferenceBackground(f, w, w, tmp, ['sep'], { maskPath: m }).get('sep')!;
      const ours = estimateBackground(s.image);
      const errOurs = skyRmsError(ours.background, s.trueSky);
      const errSep = skyRmsError(ref.back, s.trueSky);
      expect(errOurs).toBeLessThanOrEqual(1.1 * errSep + 0.05);
    });
  });
});

describe('LSB-preserving background', () => {
  const w = 768;
  const s = makeSyntheticImage({ width: w, height: w, seed: 3 });
  const region = lsbRegion(s.trueLsb);

  it('keeps at least half of a large faint galaxy with sky error <= 2 ADU, where the mesh loses it', () => {
    expect(s.lsbGalaxy).toBeDefined();
    const mesh = estimateBackground(s.image);
    const lsb = estimateBackground(s.image, { mode: 'lsb' });
    const meshLoss = lsbFluxLoss(mesh.background, s.trueSky, s.trueLsb, region);
    const lsbLoss = lsbFluxLoss(lsb.background, s.trueSky, s.trueLsb, region);
    expect(meshLoss).toBeGreaterThan(0.8);
    expect(lsbLoss).toBeLessThanOrEqual(0.5);
    expect(skyRmsError(lsb.background, s.trueSky)).toBeLessThanOrEqual(2);
    expect(lsb.mask).toBeInstanceOf(Uint8Array);
    // The galaxy centre is masked as extended emission.
    const c = Math.round(s.lsbGalaxy!.y) * w + Math.round(s.lsbGalaxy!.x);
    expect(lsb.mask![c]).toBe(1);
    expect(Math.abs(lsb.globalRms - s.skyNoise) / s.skyNoise).toBeLessThan(0.05);
  });
});
