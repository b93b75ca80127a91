/**
 * Plain image types shared by the imaging kernels. They carry no FITS or WCS objects so
 * that kernels can run on in-memory arrays (tests, synthetic data, worker buffers).
 */

/** A single-band image: row-major, `data[y * width + x]`, pixel (0,0) is the first pixel of the FITS array. */
export interface Image {
  width: number;
  height: number;
  data: Float32Array;
  /** Bit mask per pixel (see {@link MaskBit}). */
  mask?: Int32Array;
  /** Per-pixel variance in ADU². */
  variance?: Float32Array;
}

/**
 * Mask plane bits. The low bits follow the LSST calexp convention (BAD=0, SAT=1, INTRP=2,
 * CR=3, EDGE=4, DETECTED=5, DETECTED_NEGATIVE=6, SUSPECT=7, NO_DATA=8); INJECTED is ours.
 */
export const MaskBit = {
  BAD: 1 << 0,
  SAT: 1 << 1,
  INTRP: 1 << 2,
  CR: 1 << 3,
  EDGE: 1 << 4,
  DETECTED: 1 << 5,
  DETECTED_NEGATIVE: 1 << 6,
  SUSPECT: 1 << 7,
  NO_DATA: 1 << 8,
  INJECTED: 1 << 9,
} as const;
export type MaskBitName = keyof typeof MaskBit;

/** Mask bits that make a pixel unusable for sky statistics by default. */
export const DEFAULT_BAD_MASK = MaskBit.BAD | MaskBit.SAT | MaskBit.NO_DATA | MaskBit.CR;

/** Options every long-running kernel accepts. */
export interface KernelRunOptions {
  /** Aborts the kernel between chunks; it then throws {@link ImagingAbortedError}. */
  signal?: AbortSignal;
  /** Called between chunks with (units done, units total); units are kernel specific (rows, meshes, sources). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * The part of a WCS the kernels need (0-based pixel coordinates, degrees). `TanSipWcs` from
 * astro/wcs satisfies it structurally.
 */
export interface PixelSkyTransform {
  pixelToSky(x: number, y: number): [number, number];
  skyToPixel(ra: number, dec: number): [number, number];
}

/** A header the kernels can read numbers from (astro/fits `FitsHeader` satisfies it). */
export interface NumericHeader {
  getNumber(key: string): number | undefined;
}
