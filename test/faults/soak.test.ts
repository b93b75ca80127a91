/** Fault matrix row 15 (soak with worker kills) on one nats-server; the suite: soak.suite.ts. */
import { soakSuite } from './soak.suite.js';

soakSuite({ name: 'one node', cluster: false });
