import { estimateBackground, interpolateMesh } from '../astro/imaging/background.js';
import { boxStatistics, MeshScratch } from '../astro/imaging/mesh-stats.js';
import { SeededRandom } from '../astro/imaging/rng.js';
const n = 4096;
const r = new SeededRandom(1);
const data = new Float32Array(n * n);
for (let i = 0; i < n * n; i++) data[i] = 1000 + 32 * r.normal();
for (let k = 0; k < 3; k++) {
  let t = performance.now();
  const sc = new MeshScratch();
  for (let j = 0; j < 64; j++) for (let i = 0; i < 64; i++) boxStatistics(data, undefined, n, i * 64, j * 64, 64, 64, sc);
  console.log('stats ms', performance.now() - t);
  t = performance.now();
  const mesh = new Float64Array(64 * 64).fill(3);
  interpolateMesh(mesh, 64, 64, 64, 64, n, n);
  console.log('interp ms', performance.now() - t);
  t = performance.now();
  const bg = estimateBackground({ width: n, height: n, data }, {});
  console.log('mesh ms', performance.now() - t, bg.globalBack, bg.globalRms);
}
