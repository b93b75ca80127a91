/**
 * astro/: pure science kernels (no NATS). Each area is exported as a
 * namespace so names never collide across areas.
 */
export * as healpix from './healpix/index.js';
export * as hats from './hats/index.js';
export * as survey from './survey/index.js';
export * as tables from './tables.js';
