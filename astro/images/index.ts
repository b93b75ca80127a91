/** Image collections: FITS image index, selection, and the rings sky map. */
export { indexImages, indexImagesWithFailures, indexImageFile, imageHealpixCoverage, isoToMjd } from './index-images.js';
export type { ImageIndexRow, ImageIndexFailure, IndexImagesOptions, MetadataKeywords } from './index-images.js';
export { writeImageIndex, readImageIndex } from './parquet.js';
export { selectImages } from './select.js';
export type { ImageSelection } from './select.js';
export { RingsSkyMap, groupByPatch, compileSkyMapConfig, polygonIntersectsBox } from './skymap.js';
export type { RingsSkyMapConfig, CompiledSkyMapConfig, BBox, TractInfo, PatchGroup, GroupByPatchOptions } from './skymap.js';
export { ImagesError, ImageIndexFormatError, SkyMapError, ImagesAbortError } from './errors.js';
