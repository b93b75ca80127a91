/**
 * Image kernels: sky background (mesh and LSB-preserving), detection and photometry,
 * postage stamps, source injection and recovery, and the synthetic image survey.
 */
export { MaskBit, DEFAULT_BAD_MASK } from './types.js';
export type { Image, MaskBitName, KernelRunOptions, PixelSkyTransform, NumericHeader } from './types.js';
export {
  ImagingError,
  ImageShapeError,
  ImagingOptionError,
  ImagingAbortedError,
  ZeroPointError,
  InsufficientDataError,
  ImagingIoError,
} from './errors.js';
export { estimateBackground, compileBackgroundOptions, interpolateMesh } from './background.js';
export type { BackgroundMode, BackgroundOptions, LsbBackgroundOptions, BackgroundResult, CompiledBackgroundOptions } from './background.js';
export { boxStatistics, MeshScratch } from './mesh-stats.js';
export type { BoxStatistics } from './mesh-stats.js';
export { detectSources, compileDetectOptions, windowedCentroid, apertureSum, psfFlux, SourceFlag } from './detect.js';
export type { DetectOptions, DetectedSource, DetectionResult, BackgroundLike, CompiledDetectOptions } from './detect.js';
export {
  renderPsf,
  renderSersic,
  convolveStampGaussian,
  addStamp,
  psfRadius,
  moffatAlpha,
  sersicB,
  sersicIe,
  sersicEnclosed,
  FWHM_PER_SIGMA,
} from './profiles.js';
export type { PsfModel, SersicShape, ModelStamp, PixelRect } from './profiles.js';
export { injectSources, injectionRecovery, nearestSource, zeroPointFromHeader } from './inject.js';
export type {
  InjectedStar,
  InjectedGalaxy,
  InjectionSource,
  InjectOptions,
  InjectedRecord,
  InjectionResult,
  ZeroPointSource,
  RecoveryImage,
  InjectionRecoveryOptions,
  RecoveryMatch,
  RecoveryBin,
  InjectionRecoveryResult,
} from './inject.js';
export {
  cutStamp,
  cutStamps,
  cutStampsFromFiles,
  streamStampsFromFiles,
  writeStampFits,
  writeStampPng,
  asinhStretch,
  stackStamps,
  groupStampsByObject,
  StampImageCache,
} from './stamps.js';
export type { Stamp, StampRequest, StampSourceImage, StampFile, StampOptions, StampResample, FileStampOptions, PngStretchOptions, StampStack } from './stamps.js';
export { makeSyntheticImage, syntheticSky, magToCounts, lsbFluxLoss, lsbRegion, skyRmsError } from './synthetic.js';
export type { SyntheticImage, SyntheticImageOptions, SyntheticStar, SyntheticGalaxy } from './synthetic.js';
export { generateImageSurvey } from './survey.js';
export type { ImageSurveyOptions, ImageSurveyResult, SurveyImageEntry, TruthSource } from './survey.js';
export { SeededRandom } from './rng.js';
