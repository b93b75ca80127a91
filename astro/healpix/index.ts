/**
 * HEALPix NESTED scheme kernel: pixel indexing, neighbours, boundaries and cone
 * searches, index-for-index identical to healpy (nest=True, lonlat=True).
 * Angles in degrees, ra = longitude, dec = latitude.
 */
export {
  MAX_ORDER,
  MAX_SAFE_ORDER,
  nside,
  npix,
  pixelAreaSr,
  parentPixel,
  childPixels,
  ang2pix,
  ang2pixBig,
  ang2pixMany,
  pix2ang,
  neighbours,
  boundaries,
} from './nest.js';
export type { SkyPosition, BatchOptions } from './nest.js';
export { queryDisc, queryDiscRanges, rangesPixelCount } from './query-disc.js';
export type { QueryDiscOptions, PixelRange } from './query-disc.js';
export { angularDistanceDeg } from './sphere.js';
export {
  HealpixArgumentError,
  HealpixCoordinateError,
  HealpixOrderError,
  HealpixPixelError,
} from './errors.js';
