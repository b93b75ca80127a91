import { estimateBackground } from '../astro/imaging/background.js';
import { makeSyntheticImage, skyRmsError } from '../astro/imaging/synthetic.js';
import { writeFileSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
const n = 512;
const s = makeSyntheticImage({ width: n, height: n, seed: 5, nStars: 0, nGalaxies: 0, withLsbGalaxy: false, badColumns: 0 });
writeFileSync('/tmp/imaging-a.f32', Buffer.from(s.image.data.buffer));
for (const [box, filt] of [[64, 3], [32, 3], [50, 1]] as const) {
  const out = execFileSync('/usr/bin/python3', ['test/unit/ref/imaging_background.py', '/tmp/imaging-a.f32', String(n), String(n), '/tmp', '--box', String(box), '--filter', String(filt), '--methods', 'sep,photutils']).toString();
  console.log(out.trim());
  const sep = new Float32Array(readFileSync('/tmp/sep_back.f32').buffer.slice(0));
  const sepr = new Float32Array(readFileSync('/tmp/sep_rms.f32').buffer.slice(0));
  const ph = new Float32Array(readFileSync('/tmp/photutils_back.f32').buffer.slice(0));
  const bg = estimateBackground(s.image, { boxSize: box, filterSize: filt, maskBits: 0 });
  let md = 0, mr = 0, sd = 0;
  for (let i = 0; i < n * n; i++) { md = Math.max(md, Math.abs(bg.background[i]! - sep[i]!)); mr = Math.max(mr, Math.abs(bg.rms[i]! - sepr[i]!)); sd += (bg.background[i]! - sep[i]!) ** 2; }
  console.log({ box, filt, maxdiff: md, rmsdiff: Math.sqrt(sd / n / n), maxRmsDiff: mr, errOurs: skyRmsError(bg.background, s.trueSky), errSep: skyRmsError(sep, s.trueSky), errPhot: skyRmsError(ph, s.trueSky) });
  // centre-only comparison
  let cd = 0; for (let y = 64; y < n - 64; y++) for (let x = 64; x < n - 64; x++) cd = Math.max(cd, Math.abs(bg.background[y * n + x]! - sep[y * n + x]!));
  console.log('interior maxdiff', cd, 'mesh0', bg.meshBack.slice(0, 4));
}
