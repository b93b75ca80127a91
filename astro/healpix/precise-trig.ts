/**
 * Correctly rounded cos/sin on [0, pi], evaluated in double-double arithmetic.
 *
 * Why: healpy computes z = cos(theta) with glibc, whose results are (in practice)
 * correctly rounded, while V8's Math.cos is a fdlibm port that is off by one ulp
 * for a few percent of arguments. For points lying on a pixel edge that single
 * ulp decides the pixel, so the ang2pix fast path falls back to these functions
 * whenever its result sits that close to an edge. They are ~50x slower than
 * Math.cos and are not meant for bulk use.
 */

// pi/2 = PIO2_1 + PIO2_2 + PIO2_3 to ~160 bits.
const PIO2_1 = 1.5707963267948966;
const PIO2_2 = 6.123233995736766e-17;
const PIO2_3 = -1.4973849048591698e-33;

/** 1/n! as double-double (hi, lo), n = 0..31. */
const INV_FACT_HI = [
  1.0, 1.0, 0.5, 0.16666666666666666, 0.041666666666666664, 0.008333333333333333, 0.001388888888888889,
  0.0001984126984126984, 2.48015873015873e-5, 2.7557319223985893e-6, 2.755731922398589e-7,
  2.505210838544172e-8, 2.08767569878681e-9, 1.6059043836821613e-10, 1.1470745597729725e-11,
  7.647163731819816e-13, 4.779477332387385e-14, 2.8114572543455206e-15, 1.5619206968586225e-16,
  8.22063524662433e-18, 4.110317623312165e-19, 1.9572941063391263e-20, 8.896791392450574e-22,
  3.868170170630684e-23, 1.6117375710961184e-24, 6.446950284384474e-26, 2.4795962632247976e-27,
  9.183689863795546e-29, 3.279889237069838e-30, 1.1309962886447716e-31, 3.7699876288159054e-33,
  1.216125041553518e-34,
] as const;
const INV_FACT_LO = [
  0.0, 0.0, 0.0, 9.25185853854297e-18, 2.3129646346357427e-18, 1.1564823173178714e-19,
  -5.300543954373577e-20, 1.7209558293420705e-22, 2.1511947866775882e-23, -1.858393274046472e-22,
  2.3767714622250297e-23, -1.448814070935912e-24, -1.20734505911326e-25, 1.2585294588752098e-26,
  2.0655512752830745e-28, 7.03872877733453e-30, 4.399205485834081e-31, 1.6508842730861433e-31,
  1.1910679660273754e-32, 2.2141894119604265e-34, 1.4412973378659527e-36, -1.3643503830087908e-36,
  -7.911402614872376e-38, -8.843177655482344e-40, -3.6846573564509766e-41, -1.9330404233703465e-42,
  -1.2953730964765229e-43, 1.4303150396787322e-45, 1.5117542744029879e-46, 1.0498015412959506e-47,
  2.5870347832750324e-49, 5.586290567888806e-51,
] as const;

const SPLITTER = 134217729; // 2^27 + 1 (Veltkamp split)

/** A double-double value hi + lo with |lo| <= ulp(hi)/2. */
type DD = [number, number];

function fastTwoSum(a: number, b: number): DD {
  const s = a + b;
  return [s, b - (s - a)];
}

function twoSum(a: number, b: number): DD {
  const s = a + b;
  const bb = s - a;
  return [s, a - (s - bb) + (b - bb)];
}

function twoProd(a: number, b: number): DD {
  const p = a * b;
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return [p, ah * bh - p + ah * bl + al * bh + al * bl];
}

function ddMul(a: DD, b: DD): DD {
  const [p, e] = twoProd(a[0], b[0]);
  return fastTwoSum(p, e + (a[0] * b[1] + a[1] * b[0]));
}

function ddAdd(a: DD, b: DD): DD {
  const [s, e] = twoSum(a[0], b[0]);
  return fastTwoSum(s, e + a[1] + b[1]);
}

function invFact(n: number): DD {
  return [INV_FACT_HI[n] ?? 0, INV_FACT_LO[n] ?? 0];
}

/** (-1)^j / n! for the Taylor term of degree n = 2j or 2j+1. */
function signedInvFact(n: number): DD {
  const c = invFact(n);
  return Math.floor(n / 2) % 2 === 0 ? c : [-c[0], -c[1]];
}

/** sin(r) for |r| <= pi/4: Taylor series to r^29 in Horner form, error far below 2^-100. */
function ddSinSmall(r: DD): DD {
  const r2 = ddMul(r, r);
  let acc = signedInvFact(29);
  for (let n = 27; n >= 1; n -= 2) acc = ddAdd(signedInvFact(n), ddMul(acc, r2));
  return ddMul(acc, r);
}

/** cos(r) for |r| <= pi/4: Taylor series to r^30. */
function ddCosSmall(r: DD): DD {
  const r2 = ddMul(r, r);
  let acc = signedInvFact(30);
  for (let n = 28; n >= 0; n -= 2) acc = ddAdd(signedInvFact(n), ddMul(acc, r2));
  return acc;
}

/** Reduces x in [0, pi + 1e-6] to x = k*pi/2 + r with |r| <= ~pi/4, r in double-double. */
function reduce(x: number): { k: number; r: DD } {
  const k = Math.round(x / PIO2_1);
  // For k in {1, 2} Sterbenz's lemma makes x - k*PIO2_1 exact; k*PIO2_2 is exact too.
  const t = x - k * PIO2_1;
  const [s, e] = twoSum(t, -k * PIO2_2);
  return { k, r: fastTwoSum(s, e - k * PIO2_3) };
}

function checkDomain(x: number, name: string): void {
  if (!(x >= 0 && x <= 3.1415936535897933)) {
    throw new RangeError(`${name}: argument ${String(x)} outside [0, pi] (internal use only)`);
  }
}

/** cos(x) correctly rounded to double, for x in [0, pi]. */
export function preciseCos(x: number): number {
  checkDomain(x, 'preciseCos');
  const { k, r } = reduce(x);
  let v: DD;
  if (k === 0) v = ddCosSmall(r);
  else if (k === 1) {
    const s = ddSinSmall(r);
    v = [-s[0], -s[1]];
  } else {
    const c = ddCosSmall(r);
    v = [-c[0], -c[1]];
  }
  return v[0] + v[1];
}

/** sin(x) correctly rounded to double, for x in [0, pi]. */
export function preciseSin(x: number): number {
  checkDomain(x, 'preciseSin');
  const { k, r } = reduce(x);
  let v: DD;
  if (k === 0) v = ddSinSmall(r);
  else if (k === 1) v = ddCosSmall(r);
  else {
    const s = ddSinSmall(r);
    v = [-s[0], -s[1]];
  }
  return v[0] + v[1];
}
