import { InvalidOptionError } from './errors.js';
import type {
  LombScargleOptions,
  NanPolicy,
  Normalization,
  PeriodogramMethod,
  ProgressCallback,
} from './types.js';

/** Options after defaults are filled in and values checked. */
export interface CompiledLombScargleOptions {
  method: PeriodogramMethod;
  normalization: Normalization;
  fitMean: boolean;
  centerData: boolean;
  nanPolicy: NanPolicy;
  onDropped: ((count: number) => void) | undefined;
  fastTolerance: number;
  signal: AbortSignal | undefined;
  onProgress: ProgressCallback | undefined;
  label: string | undefined;
}

const METHODS: readonly PeriodogramMethod[] = ['exact', 'fast'];
const NORMALIZATIONS: readonly Normalization[] = ['standard', 'model', 'log', 'psd'];
const NAN_POLICIES: readonly NanPolicy[] = ['drop', 'raise'];

function oneOf<T extends string>(option: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  const found = allowed.find((a) => a === value);
  if (found === undefined) {
    throw new InvalidOptionError(option, value, `expected one of ${allowed.join(', ')}`);
  }
  return found;
}

/** Fill defaults, reject unknown enum values and out-of-range numbers. Pure. */
export function compileLombScargleOptions(opts: LombScargleOptions = {}): CompiledLombScargleOptions {
  const fastTolerance = opts.fastTolerance ?? 1e-7;
  if (!(fastTolerance >= 1e-12 && fastTolerance <= 1e-2)) {
    throw new InvalidOptionError('fastTolerance', fastTolerance, 'must lie in [1e-12, 1e-2]');
  }
  return {
    method: oneOf('method', opts.method, METHODS, 'exact'),
    normalization: oneOf('normalization', opts.normalization, NORMALIZATIONS, 'standard'),
    fitMean: opts.fitMean ?? true,
    centerData: opts.centerData ?? true,
    nanPolicy: oneOf('nanPolicy', opts.nanPolicy, NAN_POLICIES, 'drop'),
    onDropped: opts.onDropped,
    fastTolerance,
    signal: opts.signal,
    onProgress: opts.onProgress,
    label: opts.label,
  };
}
