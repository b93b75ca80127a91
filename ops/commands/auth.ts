/**
 * NATS authentication for a facility (operators): credentials per principal and
 * a nats-server config fragment with per-role subject permissions (ops/auth.ts).
 *
 *   ubatch auth init --dir .ubatch/auth --users alice,bob --operators ops --workers 2 [--coordinator coordinator] [--cost 11] [--force]
 *   ubatch auth add-user carol [--role user|operator|worker|coordinator] --dir .ubatch/auth
 *
 * Neither command talks to NATS; they write files. The server picks the config up
 * through `include <path relative to the server config's folder>` and a start or a
 * reload (`nats-server --signal reload`).
 */
import { dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { addUser, BCRYPT_DEFAULT_COST, BCRYPT_MAX_COST, BCRYPT_MIN_COST, inboxPrefixFor, initAuth, isRole, Roles, type AuthFiles } from '../auth.js';
import { parseIntOption, parseListOption } from '../config.js';
import { CliUsageError } from '../errors.js';
import { renderTable } from '../format.js';
import { out, outJson, type Runtime } from './runtime.js';

const DEFAULT_DIR = '.ubatch/auth';

/**
 * The `include` line for a server config at `serverConfig`. nats-server 2.9.10 joins an include path
 * to the including file's folder even when the path is absolute, so it must be relative to that folder.
 */
export function includeLine(confPath: string, serverConfig: string): string {
  return `include ${JSON.stringify(relative(dirname(serverConfig), confPath))}`;
}

function howToUse(files: AuthFiles, serverConfig: string | undefined, cwd: string): string {
  const operators = files.principals.filter((p) => p.role === 'operator').map((p) => p.name);
  const target = serverConfig ?? join(cwd, 'nats-server.conf');
  return [
    '',
    `To turn authentication on, add this line to ${serverConfig ?? 'a nats-server config in this folder'} and start or reload the server`,
    '(the path is relative to the folder of that config file: nats-server 2.9.10 does not take absolute include paths):',
    `  ${includeLine(files.confPath, target)}`,
    `  nats-server -c ${target}        # or, when already running: nats-server --signal reload`,
    'A reload briefly disables JetStream on 2.9.10 (a fraction of a second): in-flight API calls may fail once.',
    'Anonymous connections are then refused. Hand each principal its creds file (mode 0600) and nothing else.',
    'Clients connect with the creds user/password and their own inbox prefix, e.g. in nats.js:',
    `  connect({ servers, user, pass: password, inboxPrefix: '${inboxPrefixFor('<user>')}' })`,
    operators.length > 0 ? `Start the coordinator with these operators: ${operators.join(', ')}` : 'No operators: nobody may set quotas or shares.',
  ].join('\n');
}

function report(rt: Runtime, files: AuthFiles, flags: { json?: boolean; serverConfig?: string }, headline: string): void {
  const serverConfig = flags.serverConfig !== undefined ? resolve(rt.cwd, flags.serverConfig) : undefined;
  if (flags.json) {
    outJson(rt, {
      dir: files.dir,
      conf: files.confPath,
      principals: files.principals,
      written: files.written,
      include: includeLine(files.confPath, serverConfig ?? join(rt.cwd, 'nats-server.conf')),
    });
    return;
  }
  out(rt, headline);
  out(rt, `  config fragment: ${files.confPath}`);
  out(rt, `  principals:      ${files.principalsPath}`);
  out(rt, renderTable(['principal', 'role', 'credentials'], files.written.map((w) => [w.name, w.role, w.credsPath])));
  out(rt, howToUse(files, serverConfig, rt.cwd));
}

export function registerAuthCommands(program: Command, rt: Runtime): void {
  const auth = program.command('auth').description('NATS credentials and subject permissions for users, operators, workers and the coordinator');
  auth
    .command('init')
    .description('create auth.conf (bcrypt-hashed users with per-role permissions) and one creds file per principal')
    .option('--dir <dir>', 'where the files go', DEFAULT_DIR)
    .option('--users <names>', 'scientists, comma-separated (may act only as themselves)', '')
    .option('--operators <names>', 'operators, comma-separated (users plus read access to the ledger and artifacts)', '')
    .option('--workers <n|names>', 'a worker count (worker-1..worker-N) or comma-separated names', '1')
    .option('--coordinator <name>', 'the coordinator principal', 'coordinator')
    .option('--cost <n>', `bcrypt cost (${BCRYPT_MIN_COST}..${BCRYPT_MAX_COST})`, String(BCRYPT_DEFAULT_COST))
    .option('--force', 'replace an existing auth folder (every earlier credential stops working)')
    .option('--server-config <file>', 'the nats-server config that will include auth.conf (to print the right include line)')
    .option('--json', 'print JSON')
    .action(async (flags: { dir: string; serverConfig?: string; users: string; operators: string; workers: string; coordinator: string; cost: string; force?: boolean; json?: boolean }) => {
      const workers = /^\s*\d+\s*$/.test(flags.workers) ? parseIntOption(flags.workers, '--workers', 0, 10_000) : parseListOption(flags.workers);
      const users = parseListOption(flags.users);
      const operators = parseListOption(flags.operators);
      if (users.length + operators.length === 0) throw new CliUsageError('give at least one of --users or --operators');
      const files = await initAuth(resolve(rt.cwd, flags.dir), {
        users,
        operators,
        workers,
        coordinator: flags.coordinator,
        cost: parseIntOption(flags.cost, '--cost', BCRYPT_MIN_COST, BCRYPT_MAX_COST),
        force: flags.force === true,
      });
      report(rt, files, flags, `wrote credentials for ${files.written.length} principals in ${files.dir}`);
    });
  auth
    .command('add-user <name>')
    .description('add one principal with a fresh password and rewrite auth.conf (reload the server to apply)')
    .option('--role <role>', `one of ${Roles.join(', ')}`, 'user')
    .option('--dir <dir>', 'the auth folder made by auth init', DEFAULT_DIR)
    .option('--server-config <file>', 'the nats-server config that includes auth.conf (to print the right include line)')
    .option('--json', 'print JSON')
    .action(async (name: string, flags: { role: string; dir: string; serverConfig?: string; json?: boolean }) => {
      if (!isRole(flags.role)) throw new CliUsageError(`--role must be one of ${Roles.join(', ')}, got ${JSON.stringify(flags.role)}`, '--role');
      const files = await addUser(resolve(rt.cwd, flags.dir), name, flags.role);
      report(rt, files, flags, `added ${flags.role} ${name} to ${files.dir}`);
    });
}
