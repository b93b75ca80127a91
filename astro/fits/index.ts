/** FITS: header cards, image HDUs (plain and tile-compressed), sections, writing. */
export { FitsHeader, formatCard, parseHeaderCards, encodeHeader, isCommentaryKey } from './header.js';
export type { FitsCard, FitsValue } from './header.js';
export type { FitsData } from './data.js';
export { applyScaling, decodeRaw, encodeRaw, naturalBitpix } from './data.js';
export { readFits, readFitsSection, parseFits, scanFits, readFitsHeaders } from './reader.js';
export type { FitsHdu, HduKind, HduLayout, ReadFitsOptions, FitsSection, ReadSectionOptions } from './reader.js';
export { writeFits, fitsToBuffer } from './writer.js';
export type { WriteHdu } from './writer.js';
export { decompressImage, imageHeaderFromCompressed } from './compressed.js';
export {
  FitsError,
  FitsFormatError,
  FitsUnsupportedError,
  FitsHduNotFoundError,
  FitsSectionError,
  FitsWriteError,
  FitsDecompressionError,
  FitsAbortError,
} from './errors.js';
