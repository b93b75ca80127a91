export * from './writer.js';
export * from './replay.js';
export * from './views.js';
export * from './errors.js';
export * from './follow.js';
export * from './reports.js';
export * from './report-html.js';
export * from './export.js';
