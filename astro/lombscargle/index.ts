/**
 * Lomb-Scargle periodograms (astropy's LombScargle definition, nterms = 1):
 * exact O(N*M) and fast NUFFT kernels, batch summaries with Baluev false alarm
 * probabilities, and a pooled multiband periodogram. Pure computation, no I/O.
 */
export type {
  FrequencyGrid,
  LightCurve,
  LombScargleOptions,
  NanPolicy,
  Normalization,
  PeriodogramMethod,
  PeriodogramPeak,
  PeriodogramSummary,
  ProgressCallback,
} from './types.js';
export { lombScargle } from './lomb-scargle.js';
export { autoFrequencyGrid, gridFrequencies, gridMaxFrequency, validateFrequencyGrid, type AutoFrequencyOptions } from './frequency-grid.js';
export { lombScargleBatch, type BatchSummary, type LombScargleBatchOptions } from './batch.js';
export { falseAlarmProbability, fapSingle, type FalseAlarmOptions, type FapMethod } from './statistics.js';
export {
  multibandLombScargle,
  POOLED_CHI2_COMBINATION,
  type BandPeriodogram,
  type MultibandPeriodogram,
} from './multiband.js';
export { findPeaks } from './peaks.js';
export { compileLombScargleOptions, type CompiledLombScargleOptions } from './options.js';
export { prepareLightCurve, type PreparedLightCurve, type PrepareOptions } from './prepare.js';
export { fftInPlace, nextPowerOfTwo } from './fft.js';
export {
  InsufficientDataError,
  InvalidOptionError,
  InvalidUncertaintyError,
  LightCurveShapeError,
  LombScargleError,
  NonFiniteInputError,
  PeriodogramAbortedError,
  ZeroBaselineError,
} from './errors.js';
export { SeededRandom, simulateSurveyLightCurve, type SurveyLightCurveOptions } from './synthetic.js';
