/**
 * Public face of the cross-match room: exact spherical matching of point sets,
 * cone search, and the partition-aware match over HATS catalogs.
 */
export {
  crossmatch,
  coneSearch,
  compileCrossmatchOptions,
  type CrossmatchOptions,
  type CompiledCrossmatchOptions,
  type CrossmatchMode,
  type MatchPairs,
} from './crossmatch.js';
export { SkyIndex, type Neighbour, type SkyIndexBuildOptions } from './sky-index.js';
export { Scratch } from './scratch.js';
export { separationArcsec, chordFromArcsec, type SkyPoints } from './sphere.js';
export {
  CrossmatchOptionError,
  CrossmatchInputError,
  CrossmatchReadError,
  CrossmatchCatalogError,
  CrossmatchAbortedError,
} from './errors.js';
export {
  crossmatchPartition,
  crossmatchCatalogs,
  planPartitionMatch,
  pixelsOverlap,
  type PartitionCrossmatchOptions,
  type PartitionMatches,
  type AlignedUnit,
  type PixelRef,
  type RowId,
} from './partition.js';
export { writeMarginCache, coveringTargets, makeMarginAssigner, type WriteMarginCacheOptions } from './margin.js';
