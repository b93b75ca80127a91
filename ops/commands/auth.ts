/**
 * NATS authentication for a facility (operators): credentials per principal and
 * a nats-server config fragment with per-role subject permissions (ops/auth.ts).
 *
 *   ubatch auth init --dir .ubatch/auth --users alice,bob --operators ops --workers 2 [--coordinator coordinator] [--cost 11] [--force]
 *   ubatch auth add-user carol [--role user|operator|worker|coordinator] --dir .ubatch/auth [--no-reload]
 *   ubatch auth tls-init [--dir .ubatch/tls] [--hosts nats1.example.org,10.0.0.5] [--days 825] [--force]
 *
 * add-user reloads the local stack's nats-server (SIGHUP) when `ubatch up` runs here with that auth folder.
 * tls-init makes a private CA and a server certificate with the openssl CLI.
 *
 * Neither command talks to NATS; they write files. The server picks the config up
 * through `include <path relative to the server config's folder>` and a start or a
 * reload (`nats-server --signal reload`).
 */
import { dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { addUser, authPaths, BCRYPT_DEFAULT_COST, BCRYPT_MAX_COST, BCRYPT_MIN_COST, inboxPrefixFor, initAuth, initTls, isRole, Roles, type AuthFiles } from '../auth.js';
import { DEFAULT_STACK_DIR, parseIntOption, parseListOption, readStackFile } from '../config.js';
import { CliUsageError } from '../errors.js';
import { renderTable } from '../format.js';
import { note, out, outJson, type Runtime } from './runtime.js';

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

function report(rt: Runtime, files: AuthFiles, flags: { json?: boolean; serverConfig?: string }, headline: string, applied = false): void {
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
  if (!applied) out(rt, howToUse(files, serverConfig, rt.cwd));
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
    .option('--no-reload', "do not reload the local stack's nats-server (ubatch up running here with this auth folder)")
    .option('--json', 'print JSON')
    .action(async (name: string, flags: { role: string; dir: string; serverConfig?: string; reload: boolean; json?: boolean }) => {
      if (!isRole(flags.role)) throw new CliUsageError(`--role must be one of ${Roles.join(', ')}, got ${JSON.stringify(flags.role)}`, '--role');
      const files = await addUser(resolve(rt.cwd, flags.dir), name, flags.role);
      // the local stack (ubatch up here) serves this auth folder: reload it so the new principal can connect
      const stack = readStackFile(join(rt.cwd, DEFAULT_STACK_DIR));
      let reloaded: number | undefined;
      if (flags.reload && stack?.auth && authPaths(stack.auth.dir).dir === files.dir && stack.server.pid !== undefined) {
        try {
          process.kill(stack.server.pid, 'SIGHUP');
          reloaded = stack.server.pid;
        } catch (err) {
          note(rt, `ubatch: could not reload the local nats-server (pid ${stack.server.pid}): ${(err as Error).message}; run: nats-server --signal reload=${stack.server.pid}`);
        }
      }
      report(rt, files, flags, `added ${flags.role} ${name} to ${files.dir}${reloaded !== undefined ? `; reloaded the local stack's nats-server (pid ${reloaded}): ${name} can connect in a moment` : ''}`, reloaded !== undefined);
    });
  auth
    .command('tls-init')
    .description('make a private CA and a TLS server certificate for nats-server (openssl), and a tls {} config fragment')
    .option('--dir <dir>', 'where the files go', '.ubatch/tls')
    .option('--hosts <names>', 'host names / IPs the servers are reached by, comma-separated (localhost and 127.0.0.1 are always in)', '')
    .option('--days <n>', 'validity of the certificates', '825')
    .option('--force', 'replace an existing CA (every client then needs the new ca.pem)')
    .option('--json', 'print JSON')
    .action(async (flags: { dir: string; hosts: string; days: string; force?: boolean; json?: boolean }) => {
      const files = await initTls(resolve(rt.cwd, flags.dir), { hosts: parseListOption(flags.hosts), days: parseIntOption(flags.days, '--days', 1, 36_500), force: flags.force === true });
      if (flags.json) return outJson(rt, files);
      out(rt, `made a private CA and a server certificate in ${files.dir}`);
      out(rt, renderTable(['file', 'what', 'who holds it'], [
        [files.ca, 'CA certificate', 'every client and daemon host (--tls-ca / UBATCH_TLS_CA)'],
        [files.caKey, 'CA private key (0600)', 'nobody online: keep it offline, it only issues certificates'],
        [files.cert, 'server certificate', 'each nats-server host'],
        [files.key, 'server private key (0600)', 'each nats-server host only'],
        [files.conf, 'tls { cert_file, key_file, ca_file }', 'paste into (or include from) the nats-server config'],
      ]));
      out(rt, [
        '',
        'Then: add the tls block to every nats-server config and restart it; clients and daemons connect with',
        `  ubatch --tls-ca ${files.ca} ...   (or export UBATCH_TLS_CA=${files.ca})`,
        'Plain (non-TLS) clients are refused, and a client that does not trust this CA fails verification.',
        'On one machine `ubatch up --tls` does all of this for you (files in .ubatch/tls/).',
      ].join('\n'));
    });
}
