export * from './objects.js';
export * from './lightcurves.js';
export * from './gaia.js';
