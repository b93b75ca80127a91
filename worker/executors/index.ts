import type { Executor } from '../types.js';
import { catalogSqlExecutor } from './catalog-sql.js';
import { commandExecutor } from './command.js';
import { crossmatchExecutor } from './crossmatch.js';
import { noopExecutor } from './noop.js';
import { periodogramExecutor } from './periodogram.js';
import { imageBackgroundExecutor } from './image-background.js';
import { imageInjectExecutor } from './image-inject.js';
import { imageStampsExecutor } from './image-stamps.js';

/** Executors by job kind. */
export const executors: ReadonlyMap<string, Executor> = new Map(
  [noopExecutor, catalogSqlExecutor, commandExecutor, periodogramExecutor, crossmatchExecutor, imageBackgroundExecutor, imageStampsExecutor, imageInjectExecutor].map((e) => [e.kind, e]),
);
export { catalogSqlParams } from './catalog-sql.js';
export { commandArgv } from './command.js';
