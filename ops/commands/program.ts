/**
 * The `ubatch` command tree (commander) and `runCli`, which parses argv,
 * runs one command and returns the process exit code (never calls
 * process.exit itself, so it can run inside tests).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { UbatchApiError } from '../../protocol/index.js';
import { LOG_LEVELS } from '../log.js';
import { exitCodeFor, ExitCode, SpecFileError } from '../errors.js';
import { jsonDocument, processIo, type Io } from '../format.js';
import { registerDaemonCommands } from './daemons.js';
import { registerDemoCommand } from './demo.js';
import { registerJobCommands } from './jobs.js';
import { registerLedgerExportCommand } from './ledger-export.js';
import { registerLedgerVerifyCommand } from './ledger-verify.js';
import { registerLedgerCommands } from './provenance.js';
import { registerReportCommand } from './report.js';
import { registerSharesSimulateCommand } from './shares-simulate.js';
import { registerSubmitCommands } from './submit.js';
import { registerUpCommand } from './up.js';
import { registerQuotaCommands } from './quota.js';
import { registerAuthCommands } from './auth.js';
import { registerImagesCommands } from './images.js';
import type { Runtime } from './runtime.js';

function packageVersion(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    try {
      return (JSON.parse(readFileSync(join(here, up, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      // sources run from ops/commands, builds from dist/ops/commands: try the next level up
    }
  }
  return 'unknown';
}

const EXIT_HELP = `
Exit codes:
  0  ok
  1  the job failed, finished partially or was cancelled; or a runtime error
  2  bad usage, or an invalid spec (invalid_spec, unknown_kind, bad_request, input_not_found, invalid_input)
  3  NATS or the ubatch service cannot be reached
  4  not found (job, output, log)
  5  over quota, or forbidden
  6  ledger verify: the ledger or the accountant journal is not intact

Server: --server, else $UBATCH_SERVER, else .ubatch/stack.json in this directory (written by ubatch up), else nats://127.0.0.1:4222.
User:   --user, else $UBATCH_USER, else the user of the creds file, else your OS user name.
Creds:  --creds, else $UBATCH_CREDS, else --as-operator (the local stack's operator), else <stack dir>/auth/creds/<user>.json
        when talking to the local stack (ubatch up runs it with authentication on). The creds' user must be the user.
TLS:    --tls-ca, else $UBATCH_TLS_CA, else the local stack's CA when it runs with --tls.`;

export function buildProgram(rt: Runtime): Command {
  const program = new Command('ubatch');
  program
    .description('User Batch: bulk processing of survey catalogs and images on a NATS JetStream worker mesh')
    .version(packageVersion(), '-V, --version')
    .option('-s, --server <url>', 'NATS server URL(s), comma-separated')
    .option('-u, --user <name>', 'the user requests are made as')
    .option('--creds <file>', 'NATS credentials file from `ubatch auth` (else $UBATCH_CREDS, else the local stack\'s creds for the user)')
    .option('--as-operator', "use the local stack's operator credentials (quota set, shares set, reports for everyone, ledger commands)")
    .option('--tls-ca <file>', 'CA certificate (PEM) that signed the server\'s TLS certificate (else $UBATCH_TLS_CA, else the local stack\'s)')
    .addOption(new Option('--log-level <level>', 'log level of this process').choices([...LOG_LEVELS]))
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void rt.io.out.write(s),
      writeErr: (s) => void rt.io.err.write(s),
    })
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXIT_HELP);
  registerUpCommand(program, rt);
  registerDaemonCommands(program, rt);
  registerSubmitCommands(program, rt);
  registerJobCommands(program, rt);
  registerLedgerCommands(program, rt);
  // after `ledger summary`: `ledger export` joins the same command group
  registerLedgerExportCommand(program, rt);
  registerLedgerVerifyCommand(program, rt);
  registerReportCommand(program, rt);
  registerSharesSimulateCommand(program, rt);
  registerQuotaCommands(program, rt);
  registerAuthCommands(program, rt);
  registerImagesCommands(program, rt);
  registerDemoCommand(program, rt);
  return program;
}

function errorBody(err: unknown): Record<string, unknown> {
  if (err instanceof UbatchApiError) return err.toBody();
  if (err instanceof SpecFileError) return { code: 'invalid_spec', message: err.message, file: err.file, ...(err.line !== undefined ? { line: err.line, col: err.col } : {}), ...(err.where ? { where: err.where } : {}) };
  const e = err as Error;
  return { code: e?.name ?? 'error', message: e?.message ?? String(err) };
}

export interface RunCliOptions {
  io?: Io;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Parses `argv` (node-style: [node, script, ...args]), runs the command, returns the exit code. */
export async function runCli(argv: string[], o: RunCliOptions = {}): Promise<number> {
  const rt: Runtime = { io: o.io ?? processIo(), exitCode: ExitCode.ok, env: o.env ?? process.env, cwd: o.cwd ?? process.cwd() };
  const program = buildProgram(rt);
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return rt.exitCode;
  } catch (err) {
    const code = exitCodeFor(err);
    if (err instanceof CommanderError) return code; // commander has printed the message (or the help) already
    if (json) rt.io.out.write(jsonDocument({ error: errorBody(err) }));
    const e = err as Error;
    const prefix = err instanceof UbatchApiError ? `${err.code}: ` : '';
    const where = err instanceof UbatchApiError && err.where ? ` (at ${err.where})` : '';
    rt.io.err.write(`ubatch: ${prefix}${e?.message ?? String(err)}${where}\n`);
    if (code === ExitCode.failed && !(err instanceof UbatchApiError) && rt.env['UBATCH_DEBUG'] && e?.stack) rt.io.err.write(`${e.stack}\n`);
    return code;
  }
}
