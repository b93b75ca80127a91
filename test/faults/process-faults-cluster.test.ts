/** Fault matrix rows 1, 2, 3, 7, 12 on a 3-node loopback cluster with R3 streams (the suite: process-faults.suite.ts). */
import { processFaultSuite } from './process-faults.suite.js';

processFaultSuite({ name: '3-node cluster, R3 streams', cluster: true });
