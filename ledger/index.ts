export * from './writer.js';
export * from './replay.js';
export * from './views.js';
export * from './errors.js';
export * from './follow.js';
