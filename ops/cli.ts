#!/usr/bin/env node
/**
 * The `ubatch` executable (package.json bin → dist/ops/cli.js). The command
 * tree lives in ops/commands/; this file only runs it and sets the exit code.
 * The process ends on its own once every handle is closed; a daemon that was
 * told to stop has already drained by then.
 */
import { runCli } from './commands/program.js';

const code = await runCli(process.argv);
process.exitCode = code;
// one-shot commands close everything they open; if a library keeps a handle
// alive (a NATS reconnect timer, a pino transport), do not hang the shell
setTimeout(() => process.exit(code), 5000).unref();
