/** Fault matrix row 15 (soak with worker kills) on a 3-node loopback cluster with R3 streams; the suite: soak.suite.ts. */
import { soakSuite } from './soak.suite.js';

soakSuite({ name: '3-node cluster, R3 streams', cluster: true });
