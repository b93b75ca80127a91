/** Fault matrix rows 1, 2, 3, 7, 8, 12 on one nats-server (the suite: process-faults.suite.ts). */
import { processFaultSuite } from './process-faults.suite.js';

processFaultSuite({ name: 'one node', cluster: false });
