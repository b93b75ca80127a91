/**
 * Gnomonic (TAN) celestial WCS with optional SIP distortion, following the
 * FITS WCS papers I/II and the SIP convention (Shupe et al. 2005), numerically
 * equivalent to astropy.wcs all_pix2world / all_world2pix (origin 0).
 */
import { FitsHeader, type FitsCard } from '../fits/index.js';
import { WcsConvergenceError, WcsHeaderError, WcsUnsupportedError } from './errors.js';

const D2R = Math.PI / 180;
const R2D = 180 / Math.PI;

/** SIP polynomial: coefficient of u^p v^q at [p * (order + 1) + q]. */
export interface SipPolynomial {
  order: number;
  coeffs: Float64Array;
}

export interface TanSipParams {
  /** reference pixel, 1-based FITS convention (CRPIX1, CRPIX2) */
  crpix: [number, number];
  /** reference sky position in degrees (CRVAL1 = ra, CRVAL2 = dec) */
  crval: [number, number];
  /** linear transform pixel offsets -> intermediate world (degrees): [[CD1_1, CD1_2], [CD2_1, CD2_2]] */
  cd: [[number, number], [number, number]];
  /** native longitude of the celestial pole, degrees (default 180 unless CRVAL2 = 90) */
  lonpole?: number;
  /** forward SIP (pixel -> focal plane) */
  a?: SipPolynomial;
  b?: SipPolynomial;
  /** inverse SIP (focal plane -> pixel), optional */
  ap?: SipPolynomial;
  bp?: SipPolynomial;
  /** keywords carried through toCards (RADESYS, EQUINOX, ...) */
  extra?: FitsCard[];
}

function polyEval(p: SipPolynomial, u: number, v: number): number {
  const n = p.order + 1;
  let sum = 0;
  let up = 1;
  for (let i = 0; i < n; i++) {
    // Horner over q for fixed p = i
    let inner = 0;
    for (let j = n - 1 - i; j >= 0; j--) inner = inner * v + (p.coeffs[i * n + j] as number);
    sum += inner * up;
    up *= u;
  }
  return sum;
}

/** d/du and d/dv of the polynomial. */
function polyGrad(p: SipPolynomial, u: number, v: number): [number, number] {
  const n = p.order + 1;
  let du = 0;
  let dv = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; i + j < n; j++) {
      const c = p.coeffs[i * n + j] as number;
      if (c === 0) continue;
      if (i > 0) du += c * i * u ** (i - 1) * v ** j;
      if (j > 0) dv += c * j * u ** i * v ** (j - 1);
    }
  }
  return [du, dv];
}

function readSip(h: FitsHeader, prefix: 'A' | 'B' | 'AP' | 'BP'): SipPolynomial | undefined {
  const order = h.getNumber(`${prefix}_ORDER`);
  if (order === undefined) return undefined;
  if (!Number.isInteger(order) || order < 0 || order > 20) throw new WcsHeaderError(`bad ${prefix}_ORDER ${order}`, { keyword: `${prefix}_ORDER` });
  const n = order + 1;
  const coeffs = new Float64Array(n * n);
  for (let p = 0; p <= order; p++) {
    for (let q = 0; p + q <= order; q++) {
      const v = h.getNumber(`${prefix}_${p}_${q}`);
      if (v !== undefined) coeffs[p * n + q] = v;
    }
  }
  return { order, coeffs };
}

function sipCards(prefix: string, p: SipPolynomial | undefined): FitsCard[] {
  if (p === undefined) return [];
  const out: FitsCard[] = [{ key: `${prefix}_ORDER`, value: p.order }];
  const n = p.order + 1;
  for (let i = 0; i <= p.order; i++) {
    for (let j = 0; i + j <= p.order; j++) {
      const c = p.coeffs[i * n + j] as number;
      if (c !== 0) out.push({ key: `${prefix}_${i}_${j}`, value: c });
    }
  }
  return out;
}

function num(h: FitsHeader, key: string, dflt?: number): number {
  const v = h.getNumber(key);
  if (v !== undefined) return v;
  if (dflt !== undefined) return dflt;
  throw new WcsHeaderError(`missing WCS keyword ${key}`, { keyword: key });
}

const CARRY_KEYS = ['RADESYS', 'RADECSYS', 'EQUINOX', 'EPOCH', 'DATE-OBS', 'MJD-OBS', 'CUNIT1', 'CUNIT2'];

export class TanSipWcs {
  readonly crpix: [number, number];
  readonly crval: [number, number];
  readonly cd: [[number, number], [number, number]];
  readonly lonpole: number;
  readonly a: SipPolynomial | undefined;
  readonly b: SipPolynomial | undefined;
  readonly ap: SipPolynomial | undefined;
  readonly bp: SipPolynomial | undefined;
  readonly extra: FitsCard[];
  private readonly cdInv: [[number, number], [number, number]];
  private readonly sinDp: number;
  private readonly cosDp: number;

  constructor(p: TanSipParams) {
    this.crpix = [p.crpix[0], p.crpix[1]];
    this.crval = [p.crval[0], p.crval[1]];
    this.cd = [[p.cd[0][0], p.cd[0][1]], [p.cd[1][0], p.cd[1][1]]];
    // zenithal projections: theta0 = 90, so the default LONPOLE is 180 unless delta0 = 90
    this.lonpole = p.lonpole ?? (p.crval[1] < 90 ? 180 : 0);
    this.a = p.a;
    this.b = p.b;
    this.ap = p.ap;
    this.bp = p.bp;
    this.extra = p.extra ?? [];
    if ((this.a === undefined) !== (this.b === undefined)) throw new WcsHeaderError('SIP needs both A and B polynomials');
    const [[c11, c12], [c21, c22]] = this.cd;
    const det = c11 * c22 - c12 * c21;
    if (!(Math.abs(det) > 0) || !Number.isFinite(det)) throw new WcsHeaderError(`singular CD matrix ${JSON.stringify(this.cd)}`);
    this.cdInv = [[c22 / det, -c12 / det], [-c21 / det, c11 / det]];
    for (const v of [...this.crpix, ...this.crval]) if (!Number.isFinite(v)) throw new WcsHeaderError('non-finite CRPIX/CRVAL');
    this.sinDp = Math.sin(this.crval[1] * D2R);
    this.cosDp = Math.cos(this.crval[1] * D2R);
  }

  /** Build from a FITS header (CD, or PC + CDELT, or CDELT + CROTA2). */
  static fromHeader(header: FitsHeader | FitsCard[]): TanSipWcs {
    const h = header instanceof FitsHeader ? header : new FitsHeader(header);
    const naxis = h.getNumber('WCSAXES') ?? h.getNumber('NAXIS') ?? 2;
    if (naxis < 2 && h.getNumber('WCSAXES') !== undefined) throw new WcsHeaderError('need 2 WCS axes', { keyword: 'WCSAXES' });
    const ct1 = (h.getString('CTYPE1') ?? '').trim().toUpperCase();
    const ct2 = (h.getString('CTYPE2') ?? '').trim().toUpperCase();
    if (ct1 === '' || ct2 === '') throw new WcsHeaderError('missing CTYPE1/CTYPE2', { keyword: 'CTYPE1' });
    const proj1 = ct1.slice(5, 8);
    const proj2 = ct2.slice(5, 8);
    if (proj1 !== 'TAN' || proj2 !== 'TAN') {
      throw new WcsUnsupportedError(proj1 !== 'TAN' ? proj1 || ct1 : proj2 || ct2, `only TAN projections are supported (CTYPE1=${ct1}, CTYPE2=${ct2})`, { keyword: 'CTYPE1' });
    }
    const lat1 = /^(DEC-|[GES]LAT|[A-Z]{2}LT)/.test(ct1);
    const lat2 = /^(DEC-|[GES]LAT|[A-Z]{2}LT)/.test(ct2);
    if (lat1 === lat2) throw new WcsHeaderError(`CTYPE1=${ct1} and CTYPE2=${ct2} are not a longitude/latitude pair`, { keyword: 'CTYPE1' });
    const suffixes = [ct1.slice(8), ct2.slice(8)];
    for (const s of suffixes) {
      if (s !== '' && s !== '-SIP') throw new WcsUnsupportedError(s.replace(/^-/, ''), `distortion ${s} is not supported (only SIP)`, { keyword: 'CTYPE1' });
    }
    // linear part, per FITS axis i (rows) and pixel axis j (columns)
    let m: [[number, number], [number, number]];
    const hasCd = ['CD1_1', 'CD1_2', 'CD2_1', 'CD2_2'].some((k) => h.has(k));
    if (hasCd) {
      m = [[num(h, 'CD1_1', 0), num(h, 'CD1_2', 0)], [num(h, 'CD2_1', 0), num(h, 'CD2_2', 0)]];
    } else {
      const cdelt1 = num(h, 'CDELT1', 1);
      const cdelt2 = num(h, 'CDELT2', 1);
      const hasPc = ['PC1_1', 'PC1_2', 'PC2_1', 'PC2_2'].some((k) => h.has(k));
      let pc: [[number, number], [number, number]];
      if (hasPc) {
        pc = [[num(h, 'PC1_1', 1), num(h, 'PC1_2', 0)], [num(h, 'PC2_1', 0), num(h, 'PC2_2', 1)]];
      } else if (h.has('CROTA2') || h.has('CROTA1')) {
        const rho = (h.getNumber('CROTA2') ?? h.getNumber('CROTA1') ?? 0) * D2R;
        const c = Math.cos(rho);
        const s = Math.sin(rho);
        pc = [[c, (-s * cdelt2) / cdelt1], [(s * cdelt1) / cdelt2, c]];
      } else {
        pc = [[1, 0], [0, 1]];
      }
      m = [[cdelt1 * pc[0][0], cdelt1 * pc[0][1]], [cdelt2 * pc[1][0], cdelt2 * pc[1][1]]];
    }
    let crval: [number, number] = [num(h, 'CRVAL1'), num(h, 'CRVAL2')];
    if (lat1) {
      // latitude on axis 1: swap the world rows so row 0 is longitude
      m = [m[1], m[0]];
      crval = [crval[1], crval[0]];
    }
    const params: TanSipParams = {
      crpix: [num(h, 'CRPIX1', 0), num(h, 'CRPIX2', 0)],
      crval,
      cd: m,
      extra: CARRY_KEYS.filter((k) => h.has(k)).map((k) => ({ key: k, value: h.get(k) ?? null })),
    };
    const lonpole = h.getNumber('LONPOLE');
    if (lonpole !== undefined) params.lonpole = lonpole;
    const a = readSip(h, 'A');
    const b = readSip(h, 'B');
    if (a !== undefined && b !== undefined) {
      params.a = a;
      params.b = b;
      const ap = readSip(h, 'AP');
      const bp = readSip(h, 'BP');
      if (ap !== undefined && bp !== undefined) {
        params.ap = ap;
        params.bp = bp;
      }
    } else if (suffixes.includes('-SIP')) {
      throw new WcsHeaderError('CTYPE says -SIP but A_ORDER/B_ORDER are missing', { keyword: 'A_ORDER' });
    }
    return new TanSipWcs(params);
  }

  get hasSip(): boolean {
    return this.a !== undefined;
  }

  /** Pixel (0-based) -> focal plane offsets from CRPIX after SIP, in pixels. */
  private pixelToFocal(x: number, y: number): [number, number] {
    const u = x + 1 - this.crpix[0];
    const v = y + 1 - this.crpix[1];
    if (this.a === undefined || this.b === undefined) return [u, v];
    return [u + polyEval(this.a, u, v), v + polyEval(this.b, u, v)];
  }

  /** 0-based pixel -> [ra, dec] in degrees. */
  pixelToSky(x: number, y: number): [ra: number, dec: number] {
    const [fu, fv] = this.pixelToFocal(x, y);
    const [[c11, c12], [c21, c22]] = this.cd;
    const xi = c11 * fu + c12 * fv;
    const eta = c21 * fu + c22 * fv;
    return this.projectionPlaneToSky(xi, eta);
  }

  /** Intermediate world coordinates (degrees) -> sky, through TAN and the spherical rotation. */
  projectionPlaneToSky(xi: number, eta: number): [number, number] {
    const r = Math.hypot(xi, eta);
    const phi = r === 0 ? 0 : Math.atan2(xi, -eta);
    const theta = Math.atan2(R2D, r);
    const dphi = phi - this.lonpole * D2R;
    const sinT = Math.sin(theta);
    const cosT = Math.cos(theta);
    const cdp = Math.cos(dphi);
    const ra0 = this.crval[0];
    const y = -cosT * Math.sin(dphi);
    const xx = sinT * this.cosDp - cosT * this.sinDp * cdp;
    let ra = ra0 + Math.atan2(y, xx) * R2D;
    const s = sinT * this.sinDp + cosT * this.cosDp * cdp;
    let dec: number;
    if (Math.abs(s) > 0.99) {
      // asin loses precision near the poles: use the cosine part instead
      const c = Math.hypot(y, xx);
      dec = Math.sign(s) * Math.acos(Math.min(1, c)) * R2D;
    } else {
      dec = Math.asin(s) * R2D;
    }
    ra = ((ra % 360) + 360) % 360;
    return [ra, dec];
  }

  /** Sky -> intermediate world coordinates (degrees). Returns NaN for points >= 90 deg from the tangent point. */
  skyToProjectionPlane(ra: number, dec: number): [number, number] {
    const a = ra * D2R;
    const d = dec * D2R;
    const da = a - this.crval[0] * D2R;
    const sinD = Math.sin(d);
    const cosD = Math.cos(d);
    const cda = Math.cos(da);
    const phi = this.lonpole * D2R + Math.atan2(-cosD * Math.sin(da), sinD * this.cosDp - cosD * this.sinDp * cda);
    const sinT = sinD * this.sinDp + cosD * this.cosDp * cda;
    if (!(sinT > 0)) return [NaN, NaN];
    // cos(theta) from the other two components, accurate near the tangent point
    const cosT = Math.hypot(cosD * Math.sin(da), sinD * this.cosDp - cosD * this.sinDp * cda);
    const r = (R2D * cosT) / sinT;
    return [r * Math.sin(phi), -r * Math.cos(phi)];
  }

  /** [ra, dec] degrees -> 0-based pixel; [NaN, NaN] on the far hemisphere. */
  skyToPixel(ra: number, dec: number): [x: number, y: number] {
    const [xi, eta] = this.skyToProjectionPlane(ra, dec);
    if (Number.isNaN(xi)) return [NaN, NaN];
    const [[i11, i12], [i21, i22]] = this.cdInv;
    const U = i11 * xi + i12 * eta;
    const V = i21 * xi + i22 * eta;
    if (this.a === undefined || this.b === undefined) return [U + this.crpix[0] - 1, V + this.crpix[1] - 1];
    // initial guess from the inverse polynomials when given, then Newton on the forward SIP
    let u = U;
    let v = V;
    if (this.ap !== undefined && this.bp !== undefined) {
      u = U + polyEval(this.ap, U, V);
      v = V + polyEval(this.bp, U, V);
    }
    const a = this.a;
    const b = this.b;
    for (let it = 0; it < 50; it++) {
      const fu = u + polyEval(a, u, v) - U;
      const fv = v + polyEval(b, u, v) - V;
      if (Math.abs(fu) < 1e-12 && Math.abs(fv) < 1e-12) break;
      const [adu, adv] = polyGrad(a, u, v);
      const [bdu, bdv] = polyGrad(b, u, v);
      const j11 = 1 + adu;
      const j12 = adv;
      const j21 = bdu;
      const j22 = 1 + bdv;
      const det = j11 * j22 - j12 * j21;
      if (!(Math.abs(det) > 1e-12)) throw new WcsConvergenceError(ra, dec, 'singular SIP Jacobian');
      const du = (j22 * fu - j12 * fv) / det;
      const dv = (-j21 * fu + j11 * fv) / det;
      u -= du;
      v -= dv;
      if (!Number.isFinite(u) || !Number.isFinite(v)) throw new WcsConvergenceError(ra, dec, 'diverged');
      if (it === 49 && Math.hypot(du, dv) > 1e-6) throw new WcsConvergenceError(ra, dec, `residual ${Math.hypot(du, dv)} px after 50 iterations`);
    }
    return [u + this.crpix[0] - 1, v + this.crpix[1] - 1];
  }

  /** Header cards describing this WCS (CD form, RA---TAN[-SIP]). */
  toCards(): FitsCard[] {
    const sip = this.hasSip ? '-SIP' : '';
    const cards: FitsCard[] = [
      { key: 'WCSAXES', value: 2 },
      { key: 'CTYPE1', value: `RA---TAN${sip}` },
      { key: 'CTYPE2', value: `DEC--TAN${sip}` },
      { key: 'CRPIX1', value: this.crpix[0] },
      { key: 'CRPIX2', value: this.crpix[1] },
      { key: 'CRVAL1', value: this.crval[0] },
      { key: 'CRVAL2', value: this.crval[1] },
      { key: 'CD1_1', value: this.cd[0][0] },
      { key: 'CD1_2', value: this.cd[0][1] },
      { key: 'CD2_1', value: this.cd[1][0] },
      { key: 'CD2_2', value: this.cd[1][1] },
      { key: 'CUNIT1', value: 'deg' },
      { key: 'CUNIT2', value: 'deg' },
    ];
    const defaultLonpole = this.crval[1] < 90 ? 180 : 0;
    if (this.lonpole !== defaultLonpole) cards.push({ key: 'LONPOLE', value: this.lonpole });
    for (const c of this.extra) if (!c.key.startsWith('CUNIT')) cards.push({ ...c });
    cards.push(...sipCards('A', this.a), ...sipCards('B', this.b), ...sipCards('AP', this.ap), ...sipCards('BP', this.bp));
    return cards;
  }

  private params(): TanSipParams {
    const p: TanSipParams = { crpix: this.crpix, crval: this.crval, cd: this.cd, lonpole: this.lonpole, extra: this.extra };
    if (this.a !== undefined) p.a = this.a;
    if (this.b !== undefined) p.b = this.b;
    if (this.ap !== undefined) p.ap = this.ap;
    if (this.bp !== undefined) p.bp = this.bp;
    return p;
  }

  /** WCS of a cutout whose pixel (0, 0) is this image's pixel (dx, dy). */
  shifted(dx: number, dy: number): TanSipWcs {
    return new TanSipWcs({ ...this.params(), crpix: [this.crpix[0] - dx, this.crpix[1] - dy] });
  }

  /** Mean pixel scale at the reference pixel (sqrt |det CD|), arcseconds. */
  pixelScaleArcsec(): number {
    const [[c11, c12], [c21, c22]] = this.cd;
    return Math.sqrt(Math.abs(c11 * c22 - c12 * c21)) * 3600;
  }

  /**
   * The four corners [ra, dec] of a width x height image, in astropy's
   * calc_footprint order: (0,0), (0,h-1), (w-1,h-1), (w-1,0). With `edges`,
   * the outer pixel edges (-0.5 .. w-0.5) are used instead of pixel centres.
   */
  footprint(width: number, height: number, opts: { edges?: boolean } = {}): [number, number][] {
    const e = opts.edges === true ? 0.5 : 0;
    const x0 = -e;
    const y0 = -e;
    const x1 = width - 1 + e;
    const y1 = height - 1 + e;
    return [this.pixelToSky(x0, y0), this.pixelToSky(x0, y1), this.pixelToSky(x1, y1), this.pixelToSky(x1, y0)];
  }
}
