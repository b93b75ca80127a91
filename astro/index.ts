/**
 * astro/: pure science kernels (no NATS). Each area is exported as a
 * namespace so names never collide across areas.
 */
export * as healpix from './healpix/index.js';
export * as hats from './hats/index.js';
export * as survey from './survey/index.js';
export * as tables from './tables.js';
export * as crossmatch from './crossmatch/index.js';
export * as lombscargle from './lombscargle/index.js';
export * as fits from './fits/index.js';
export * as wcs from './wcs/index.js';
export * as images from './images/index.js';
export * as imaging from './imaging/index.js';
export { mulberry32 } from './random.js';
export { forEachInLanes, inLanes } from './lanes.js';
