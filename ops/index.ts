/**
 * ops/: the `ubatch` CLI, the embedded local stack, local runs, config,
 * logging (pino) and metrics (prom-client).
 */
export { runCli, buildProgram, type RunCliOptions } from './commands/program.js';
export { DEMO_STEPS, runDemo, type DemoContext, type DemoStep, type DemoOptions } from './commands/demo.js';
export { buildProvenanceReport, renderLedgerSummary, type ProvenanceReport, type OutputView, type AttemptView } from './commands/provenance.js';
export { startLocalStack, defaultCliPath, type LocalStack, type LocalStackOptions, type StackChild } from './stack.js';
export { runLocally, type LocalRunOptions, type LocalRunResult, type LocalRunProgress, type LocalTaskFailure } from './local-run.js';
export { resolveCliConfig, readStackFile, sanitizeUserName, parseIntOption, parseListOption, DEFAULT_SERVER, type CliConfig, type GlobalOptions, type StackFile } from './config.js';
export { loadSpecFile, parseSpecText, applySet, resolveSpecPaths, locateJsonError, offsetToLineCol, type LoadedSpec, type LoadSpecOptions } from './spec-file.js';
export * from './errors.js';
export * from './format.js';
export { workerMetricsFrom, coordinatorMetricsFrom } from './daemon-metrics.js';
export { createLogger, resolveLogLevel, noopLog, LOG_LEVELS, type Logger, type Log, type LogLevel } from './log.js';
export { createMetrics, startMetricsServer, type DaemonMetrics, type MetricsServer } from './metrics.js';
export { NatsServer, NatsCluster, freePort, freePorts, findNatsServer } from './nats-server.js';
