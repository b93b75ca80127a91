/**
 * NATS authentication and authorization for ubatch: a nats-server config
 * fragment (`auth.conf`) with one bcrypt-hashed user per principal and
 * per-role subject permissions, plus one credentials file per principal.
 *
 *   <dir>/auth.conf            include it from the nats-server config: `include "<path relative to that config's folder>"`
 *                              (2.9.10 joins even an absolute include path to the including file's folder)
 *   <dir>/principals.json      names, roles and bcrypt hashes (no secrets in clear); add-user re-renders auth.conf from it
 *   <dir>/creds/<name>.json    { user, password, role } for one principal, mode 0600
 *
 * Why the config has this shape (nats-server 2.9.10, see DESIGN.md "Known limits"):
 * - ONE top-level `authorization { users: [...] }` block and nothing else. A
 *   top-level `authorization` block next to an `accounts` block that holds only the
 *   system account makes 2.9.10 admit anonymous clients (CVE-2023-47090). So there
 *   is no `accounts` block and no `system_account`: every principal lives in the
 *   global account and is fenced by subject permissions.
 * - No `no_auth_user`: a connection without valid credentials is refused.
 * - Passwords are bcrypt hashes (`$2a$<cost>$...`), which nats-server compares
 *   itself; the clear password lives only in the principal's creds file. The bcrypt
 *   here is our own (no npm package may be added): EksBlowfish as in OpenBSD, with
 *   the Blowfish tables derived from the hex digits of pi at first use.
 * - The API carries the user in the subject's last token (`ubatch.v1.<verb>.<user>`),
 *   and the service trusts it; the permissions below are what make that safe: a
 *   user may publish only on its own token and subscribe only to its own inbox
 *   (`_INBOX.<user>.>`, so clients connect with `inboxPrefix: '_INBOX.<user>'`) and
 *   its own events. Users get no JetStream API at all. Workers get the JetStream
 *   calls a worker makes and nothing that rewrites history (no stream
 *   delete/purge/update, no ledger kinds other than task.charged). The coordinator
 *   gets everything except destroying the ledger (which also carries deny_purge /
 *   deny_delete: two layers). Operators are users plus read access to the ledger,
 *   the artifact store and the fair-share bucket (ranking, capacity samples).
 */
import { execFile } from 'node:child_process';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { API_PREFIX, Buckets, isSafeToken, ObjectStores, Streams } from '../protocol/index.js';
import { CliUsageError } from './errors.js';

// ---------------------------------------------------------------------------
// Errors

/** A bad auth request the operator can fix: a bad name, an existing dir, a missing principals file (exit 2). */
export class AuthConfigError extends CliUsageError {
  override name = 'AuthConfigError';
  constructor(
    message: string,
    /** the file or folder concerned, when there is one */
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(message, undefined, options);
  }
}

/** A bcrypt hash string that cannot be parsed, or a cost out of range. */
export class BcryptError extends Error {
  override name = 'BcryptError';
  constructor(message: string, readonly value?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

// ---------------------------------------------------------------------------
// bcrypt (EksBlowfish, OpenBSD `$2a$`/`$2b$`)

const BF_WORDS = 18 + 4 * 256;
let bfInit: Uint32Array | undefined;

/** P-array (18 words) then the four S-boxes (4 x 256 words): the fractional hex digits of pi, as Blowfish defines them. */
function blowfishTables(): Uint32Array {
  if (bfInit) return bfInit;
  const bits = BF_WORDS * 32;
  const guard = 64n;
  const one = 1n << (BigInt(bits) + guard);
  // Machin: pi = 16 atan(1/5) - 4 atan(1/239), in fixed point with 64 guard bits
  const atanInv = (x: bigint): bigint => {
    const x2 = x * x;
    let term = one / x;
    let sum = term;
    for (let k = 1n, sign = -1n; term !== 0n; k++, sign = -sign) {
      term /= x2;
      sum += (sign * term) / (2n * k + 1n);
    }
    return sum;
  };
  const pi = 16n * atanInv(5n) - 4n * atanInv(239n);
  const hex = ((pi - 3n * one) >> guard).toString(16).padStart(bits / 4, '0');
  const t = new Uint32Array(BF_WORDS);
  for (let i = 0; i < BF_WORDS; i++) t[i] = Number.parseInt(hex.slice(i * 8, i * 8 + 8), 16);
  // the last S-box word is a known constant: a cheap guard against a precision slip
  if (t[0] !== 0x243f6a88 || t[BF_WORDS - 1] !== 0x3ac372e6) throw new Error('internal: Blowfish tables derived from pi are wrong');
  bfInit = t;
  return t;
}

/** One Blowfish block encryption of lr[off], lr[off+1] in place. `s` holds P (0..17) then S0..S3 (18..1041). */
function encipher(s: Uint32Array, lr: Uint32Array, off: number): void {
  let l = lr[off]! ^ s[0]!;
  let r = lr[off + 1]!;
  for (let i = 1; i <= 16; i += 2) {
    r ^= (((s[18 + (l >>> 24)]! + s[274 + ((l >>> 16) & 0xff)]!) ^ s[530 + ((l >>> 8) & 0xff)]!) + s[786 + (l & 0xff)]!) ^ s[i]!;
    l ^= (((s[18 + (r >>> 24)]! + s[274 + ((r >>> 16) & 0xff)]!) ^ s[530 + ((r >>> 8) & 0xff)]!) + s[786 + (r & 0xff)]!) ^ s[i + 1]!;
  }
  lr[off] = r ^ s[17]!;
  lr[off + 1] = l;
}

/** Cyclic big-endian 32-bit words of a byte string (Blowfish's stream2word). */
class WordStream {
  private i = 0;
  constructor(private readonly data: Uint8Array) {}
  next(): number {
    let w = 0;
    for (let k = 0; k < 4; k++) {
      w = (w << 8) | this.data[this.i]!;
      this.i = (this.i + 1) % this.data.length;
    }
    return w >>> 0;
  }
}

/** Blowfish key schedule step; with a salt, each block is XORed with the salt stream before encryption (EksBlowfish). */
function expandKey(s: Uint32Array, key: Uint8Array, salt?: Uint8Array): void {
  const ks = new WordStream(key);
  for (let i = 0; i < 18; i++) s[i] = s[i]! ^ ks.next();
  const ss = salt ? new WordStream(salt) : undefined;
  const lr = new Uint32Array(2);
  for (let i = 0; i < BF_WORDS; i += 2) {
    if (ss) {
      lr[0] = lr[0]! ^ ss.next();
      lr[1] = lr[1]! ^ ss.next();
    }
    encipher(s, lr, 0);
    s[i] = lr[0]!;
    s[i + 1] = lr[1]!;
  }
}

const BCRYPT_B64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function b64Encode(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const b0 = bytes[i]!;
    const b1 = bytes[i + 1];
    const b2 = bytes[i + 2];
    out += BCRYPT_B64[b0 >> 2];
    out += BCRYPT_B64[((b0 & 0x03) << 4) | ((b1 ?? 0) >> 4)];
    if (b1 === undefined) break;
    out += BCRYPT_B64[((b1 & 0x0f) << 2) | ((b2 ?? 0) >> 6)];
    if (b2 === undefined) break;
    out += BCRYPT_B64[b2 & 0x3f];
  }
  return out;
}

function b64Decode(text: string, nBytes: number): Uint8Array {
  const out = new Uint8Array(nBytes);
  let acc = 0;
  let nbits = 0;
  let o = 0;
  for (const ch of text) {
    const v = BCRYPT_B64.indexOf(ch);
    if (v < 0) throw new BcryptError(`invalid character ${JSON.stringify(ch)} in bcrypt base64`, text);
    acc = ((acc << 6) | v) & 0xffff;
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      if (o < nBytes) out[o++] = (acc >> nbits) & 0xff;
    }
  }
  if (o < nBytes) throw new BcryptError(`bcrypt base64 ${JSON.stringify(text)} is too short for ${nBytes} bytes`, text);
  return out;
}

// "OrpheanBeholderScryDoubt"
const MAGIC = Uint32Array.of(0x4f727068, 0x65616e42, 0x65686f6c, 0x64657253, 0x63727944, 0x6f756274);

export const BCRYPT_MIN_COST = 4;
export const BCRYPT_MAX_COST = 31;
/** nats-server's own examples use cost 11. @default 11 */
export const BCRYPT_DEFAULT_COST = 11;

function checkCost(cost: number): void {
  if (!Number.isInteger(cost) || cost < BCRYPT_MIN_COST || cost > BCRYPT_MAX_COST) {
    throw new BcryptError(`bcrypt cost must be an integer in ${BCRYPT_MIN_COST}..${BCRYPT_MAX_COST}, got ${cost}`);
  }
}

/** The 23 raw hash bytes: EksBlowfishSetup(cost, salt, key) then 64 encryptions of the magic text. */
function bcryptRaw(password: Uint8Array, salt: Uint8Array, cost: number): Uint8Array {
  // the key includes the terminating NUL and stops at 72 bytes ($2b$ semantics)
  const key = new Uint8Array(Math.min(password.length + 1, 72));
  key.set(password.subarray(0, Math.min(password.length, 72)));
  const s = blowfishTables().slice();
  expandKey(s, key, salt);
  for (let i = 2 ** cost; i > 0; i--) {
    expandKey(s, key);
    expandKey(s, salt);
  }
  const c = MAGIC.slice();
  for (let i = 0; i < 64; i++) for (let j = 0; j < 6; j += 2) encipher(s, c, j);
  const out = new Uint8Array(24);
  for (let i = 0; i < 6; i++) {
    out[4 * i] = c[i]! >>> 24;
    out[4 * i + 1] = (c[i]! >>> 16) & 0xff;
    out[4 * i + 2] = (c[i]! >>> 8) & 0xff;
    out[4 * i + 3] = c[i]! & 0xff;
  }
  return out.subarray(0, 23);
}

const BCRYPT_RE = /^\$2([abxy])\$(\d\d)\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})$/;

export interface BcryptOptions {
  /** log2 of the key-schedule rounds. @default 11 */
  cost?: number;
  /** 16 salt bytes. @default random */
  salt?: Uint8Array;
  /** hash prefix minor version. @default 'a' (what nats-server's docs show) */
  minor?: 'a' | 'b';
}

/** bcrypt hash of `password` (UTF-8), e.g. `$2a$11$<22 salt chars><31 hash chars>`. */
export function bcryptHash(password: string | Uint8Array, o: BcryptOptions = {}): string {
  const cost = o.cost ?? BCRYPT_DEFAULT_COST;
  checkCost(cost);
  const salt = o.salt ?? randomBytes(16);
  if (salt.length !== 16) throw new BcryptError(`bcrypt salt must be 16 bytes, got ${salt.length}`);
  const pw = typeof password === 'string' ? new TextEncoder().encode(password) : password;
  return `$2${o.minor ?? 'a'}$${String(cost).padStart(2, '0')}$${b64Encode(salt)}${b64Encode(bcryptRaw(pw, salt, cost))}`;
}

/** true when `password` matches `hash` (`$2a$`, `$2b$` or `$2y$`); constant-time compare of the hash part. */
export function bcryptVerify(password: string | Uint8Array, hash: string): boolean {
  const m = BCRYPT_RE.exec(hash);
  if (!m) throw new BcryptError('not a bcrypt hash ($2a$NN$ + 53 characters)', hash);
  if (m[1] === 'x') throw new BcryptError('$2x$ hashes (the old 8-bit bug) are not supported', hash);
  const cost = Number(m[2]);
  checkCost(cost);
  const salt = b64Decode(m[3]!, 16);
  const pw = typeof password === 'string' ? new TextEncoder().encode(password) : password;
  const got = Buffer.from(b64Encode(bcryptRaw(pw, salt, cost)));
  const want = Buffer.from(m[4]!);
  return got.length === want.length && timingSafeEqual(got, want);
}

// ---------------------------------------------------------------------------
// Roles and permissions

export const Roles = ['user', 'operator', 'worker', 'coordinator'] as const;
export type Role = (typeof Roles)[number];

export function isRole(v: string): v is Role {
  return (Roles as readonly string[]).includes(v);
}

export interface SubjectRules {
  allow: string[];
  deny: string[];
}
export interface Permissions {
  publish: SubjectRules;
  subscribe: SubjectRules;
}

/** The inbox prefix a principal must connect with (`connect({ inboxPrefix })`): replies come only there. */
export function inboxPrefixFor(name: string): string {
  return `_INBOX.${name}`;
}

const JS = '$JS.API';
const kvStream = (bucket: string) => `KV_${bucket}`;
const objStream = (store: string) => `OBJ_${store}`;

/** JetStream admin calls nobody but the coordinator makes, on any stream. */
const STREAM_ADMIN = ['CREATE', 'UPDATE', 'DELETE', 'PURGE', 'MSG.DELETE', 'SNAPSHOT', 'RESTORE'].map((op) => `${JS}.STREAM.${op}.>`);
/** Destroying or rewriting the ledger: denied even to the coordinator (UB_LEDGER also has deny_purge / deny_delete). */
const LEDGER_DESTRUCTION = ['DELETE', 'PURGE', 'MSG.DELETE', 'RESTORE'].map((op) => `${JS}.STREAM.${op}.${Streams.ledger}`);
/** Things no tenant-facing principal touches. */
const SYSTEM = ['$SYS.>'];

/** Reading a stream through an ordered consumer (replays, KV watch, object get) plus single-message gets. */
function streamReader(stream: string): string[] {
  return [
    `${JS}.STREAM.INFO.${stream}`,
    `${JS}.STREAM.MSG.GET.${stream}`,
    `${JS}.DIRECT.GET.${stream}`,
    `${JS}.DIRECT.GET.${stream}.>`,
    `${JS}.CONSUMER.CREATE.${stream}`,
    `${JS}.CONSUMER.CREATE.${stream}.>`,
    `${JS}.CONSUMER.INFO.${stream}.*`,
    `${JS}.CONSUMER.DELETE.${stream}.*`,
    `${JS}.CONSUMER.MSG.NEXT.${stream}.*`,
    `$JS.FC.${stream}.>`,
  ];
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

function userPermissions(name: string): Permissions {
  return {
    publish: {
      // requests as itself only: `ubatch.v1.<a>.<b>.<name>` (jobs.get, ...) and `ubatch.v1.<verb>.<name>` (report)
      allow: [`${API_PREFIX}.*.*.${name}`, `${API_PREFIX}.*.${name}`],
      deny: ['$JS.>', '$KV.>', '$O.>', 'ub.>', ...SYSTEM],
    },
    subscribe: {
      allow: [`${inboxPrefixFor(name)}.>`, `ub.events.${name}.>`],
      deny: ['$JS.>', '$KV.>', '$O.>', ...SYSTEM],
    },
  };
}

function workerPermissions(name: string): Permissions {
  const ensureTopologyInfo = [
    ...Object.values(Streams),
    ...Object.values(Buckets).map(kvStream),
    objStream(ObjectStores.artifacts),
  ].map((s) => `${JS}.STREAM.INFO.${s}`);
  const watched = [kvStream(Buckets.jobs), kvStream(Buckets.shares)];
  const artifacts = objStream(ObjectStores.artifacts);
  return {
    publish: {
      allow: unique([
        `${JS}.INFO`,
        ...ensureTopologyInfo,
        // pull tasks from the tenants' durable consumers, ack/nak/term/in-progress
        `${JS}.CONSUMER.INFO.${Streams.tasks}.*`,
        `${JS}.CONSUMER.MSG.NEXT.${Streams.tasks}.*`,
        `$JS.ACK.${Streams.tasks}.>`,
        // outcomes and charges
        'ub.results.>',
        'ub.ledger.task.charged.>',
        // job specs and cancels (get + watch), the fair-share ranking (watch)
        ...watched.flatMap((s) => streamReader(s).filter((subj) => !subj.includes('.MSG.NEXT.'))),
        // heartbeats (put, delete on close)
        `$KV.${Buckets.workers}.>`,
        // task logs and small artifacts: chunk + meta publishes, lookup of an existing object's meta
        `$O.${ObjectStores.artifacts}.>`,
        `${JS}.STREAM.MSG.GET.${artifacts}`,
        `${JS}.DIRECT.GET.${artifacts}`,
        `${JS}.DIRECT.GET.${artifacts}.>`,
      ]),
      deny: [
        ...STREAM_ADMIN,
        `${JS}.CONSUMER.DURABLE.>`,
        `${JS}.CONSUMER.CREATE.${Streams.tasks}.>`,
        `${JS}.CONSUMER.DELETE.${Streams.tasks}.>`,
        ...[Streams.results, Streams.ledger, Streams.tasks, Streams.events].flatMap((s) => [`${JS}.DIRECT.GET.${s}`, `${JS}.DIRECT.GET.${s}.>`, `${JS}.STREAM.MSG.GET.${s}`]),
        'ub.ledger.job.>',
        'ub.ledger.quota.>',
        'ub.ledger.share.>',
        'ub.tasks.>',
        'ub.events.>',
        `$KV.${Buckets.jobs}.>`,
        `$KV.${Buckets.shares}.>`,
        `$KV.${Buckets.quotas}.>`,
        `${API_PREFIX}.>`,
        ...SYSTEM,
      ],
    },
    subscribe: {
      allow: [`${inboxPrefixFor(name)}.>`, 'ub.wake'],
      deny: [...SYSTEM],
    },
  };
}

function coordinatorPermissions(): Permissions {
  return {
    // the coordinator creates streams, consumers and buckets at start-up, publishes tasks, events,
    // ledger entries, replies to every user's inbox: it gets everything but destroying the ledger
    publish: { allow: ['>'], deny: [...LEDGER_DESTRUCTION] },
    subscribe: { allow: ['>'], deny: [] },
  };
}

function operatorPermissions(name: string): Permissions {
  const u = userPermissions(name);
  const ledger = streamReader(Streams.ledger);
  const artifacts = streamReader(objStream(ObjectStores.artifacts));
  // the fair-share ranking and the capacity samples (reports, shares simulate): read-only
  const shares = streamReader(kvStream(Buckets.shares));
  return {
    publish: {
      allow: [...u.publish.allow, `${JS}.INFO`, ...ledger, ...artifacts, ...shares],
      // the user deny list has `$JS.>`: operators swap it for the admin calls they must not make
      deny: [...STREAM_ADMIN, `${JS}.CONSUMER.DURABLE.>`, '$KV.>', '$O.>', 'ub.>', ...SYSTEM],
    },
    subscribe: {
      allow: [...u.subscribe.allow],
      deny: ['$KV.>', '$O.>', ...SYSTEM],
    },
  };
}

/** The subject permissions of one principal. */
export function permissionsFor(role: Role, name: string): Permissions {
  checkName(name);
  switch (role) {
    case 'user':
      return userPermissions(name);
    case 'operator':
      return operatorPermissions(name);
    case 'worker':
      return workerPermissions(name);
    case 'coordinator':
      return coordinatorPermissions();
  }
}

function checkName(name: string): void {
  if (!isSafeToken(name)) throw new AuthConfigError(`invalid principal name ${JSON.stringify(name)}: use 1-64 of A-Z a-z 0-9 _ -`);
}

// ---------------------------------------------------------------------------
// Config rendering

export interface Principal {
  name: string;
  role: Role;
  /** bcrypt hash of the password */
  hash: string;
}

const q = (s: string): string => JSON.stringify(s);
const list = (xs: string[]): string => `[${xs.map(q).join(', ')}]`;

/**
 * The nats-server config fragment: one `authorization { users }` block, no `accounts`,
 * no `no_auth_user` (see the file header for why).
 */
export function renderAuthConfig(principals: Principal[], o: { generatedAt?: Date } = {}): string {
  const lines = [
    `# ubatch NATS authorization, generated by 'ubatch auth' at ${(o.generatedAt ?? new Date()).toISOString()}.`,
    '# Regenerate with `ubatch auth add-user`; do not edit by hand (principals.json is the source).',
    '# One authorization block and NO accounts block / system_account: a top-level authorization',
    '# next to an accounts block holding only the system account admits anonymous clients on',
    '# nats-server 2.9.10 (CVE-2023-47090). No no_auth_user: anonymous connections are refused.',
    'authorization {',
    '  users: [',
  ];
  for (const p of principals) {
    checkName(p.name);
    if (!BCRYPT_RE.test(p.hash)) throw new AuthConfigError(`principal ${p.name} has no valid bcrypt hash`);
    const perms = permissionsFor(p.role, p.name);
    const rules = (r: SubjectRules): string => `{ allow: ${list(r.allow)}${r.deny.length > 0 ? `, deny: ${list(r.deny)}` : ''} }`;
    lines.push(
      `    # ${p.role}`,
      '    {',
      `      user: ${q(p.name)}`,
      `      password: ${q(p.hash)}`,
      '      permissions: {',
      `        publish: ${rules(perms.publish)}`,
      `        subscribe: ${rules(perms.subscribe)}`,
      '      }',
      '    }',
    );
  }
  lines.push('  ]', '}');
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------
// Files

export interface Credentials {
  user: string;
  password: string;
  role: Role;
}

export interface PrincipalFile {
  name: string;
  role: Role;
  /** absolute path of the creds file */
  credsPath: string;
}

export interface AuthFiles {
  dir: string;
  confPath: string;
  principalsPath: string;
  credsDir: string;
  /** the principals written by this call */
  written: PrincipalFile[];
  /** every principal now in auth.conf */
  principals: { name: string; role: Role }[];
}

export interface InitAuthOptions {
  /** scientists: may act only as themselves */
  users: string[];
  /** users who also read the ledger and artifacts; the coordinator must list them as operators too */
  operators: string[];
  /** a count (named worker-1..worker-N) or the worker names */
  workers: number | string[];
  /** the coordinator principal's name. @default 'coordinator' */
  coordinator?: string;
  /** bcrypt cost. @default 11 */
  cost?: number;
  /** overwrite an existing auth folder (every earlier credential stops working). @default false */
  force?: boolean;
}

interface PrincipalsDoc {
  version: 1;
  cost: number;
  principals: Principal[];
}

const PRINCIPALS_FILE = 'principals.json';
const CONF_FILE = 'auth.conf';
const CREDS_DIR = 'creds';

export function authPaths(dir: string): { dir: string; confPath: string; principalsPath: string; credsDir: string } {
  const d = path.resolve(dir);
  return { dir: d, confPath: path.join(d, CONF_FILE), principalsPath: path.join(d, PRINCIPALS_FILE), credsDir: path.join(d, CREDS_DIR) };
}

export function credsPathFor(dir: string, name: string): string {
  checkName(name);
  return path.join(authPaths(dir).credsDir, `${name}.json`);
}

/** Writes `text` with mode 0600 via a temp file + rename, so a reader never sees half a file. */
async function writeSecret(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, 0o600); // in case a umask or ACL widened it
  await rename(tmp, file);
}

function newPassword(): string {
  return randomBytes(24).toString('base64url');
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function readPrincipals(dir: string): Promise<PrincipalsDoc> {
  const { principalsPath } = authPaths(dir);
  let text: string;
  try {
    text = await readFile(principalsPath, 'utf8');
  } catch (err) {
    throw new AuthConfigError(`no ${PRINCIPALS_FILE} in ${authPaths(dir).dir}: run 'ubatch auth init' first`, principalsPath, { cause: err });
  }
  const v: unknown = JSON.parse(text);
  const doc = v as Partial<PrincipalsDoc> | null;
  if (!doc || doc.version !== 1 || !Array.isArray(doc.principals) || typeof doc.cost !== 'number') {
    throw new AuthConfigError(`${principalsPath} is not a ubatch principals file (version 1)`, principalsPath);
  }
  for (const p of doc.principals as unknown[]) {
    const e = p as Partial<Principal> | null;
    if (!e || typeof e.name !== 'string' || typeof e.role !== 'string' || !isRole(e.role) || typeof e.hash !== 'string') {
      throw new AuthConfigError(`${principalsPath} has a malformed principal entry: ${JSON.stringify(p)}`, principalsPath);
    }
  }
  return doc as PrincipalsDoc;
}

async function writeAll(dir: string, doc: PrincipalsDoc, fresh: { name: string; role: Role; password: string }[]): Promise<AuthFiles> {
  const paths = authPaths(dir);
  await mkdir(paths.credsDir, { recursive: true, mode: 0o700 });
  await chmod(paths.dir, 0o700);
  await chmod(paths.credsDir, 0o700);
  const written: PrincipalFile[] = [];
  for (const f of fresh) {
    const credsPath = credsPathFor(dir, f.name);
    const creds: Credentials = { user: f.name, password: f.password, role: f.role };
    await writeSecret(credsPath, `${JSON.stringify(creds, null, 2)}\n`);
    written.push({ name: f.name, role: f.role, credsPath });
  }
  // creds first, config last: a server reloaded in between never knows a user whose creds are missing
  await writeSecret(paths.principalsPath, `${JSON.stringify(doc, null, 2)}\n`);
  await writeSecret(paths.confPath, renderAuthConfig(doc.principals));
  return { ...paths, written, principals: doc.principals.map((p) => ({ name: p.name, role: p.role })) };
}

function workerNames(workers: number | string[]): string[] {
  if (typeof workers === 'number') {
    if (!Number.isInteger(workers) || workers < 0 || workers > 10_000) throw new AuthConfigError(`workers must be a count in 0..10000 or a list of names, got ${workers}`);
    return Array.from({ length: workers }, (_, i) => `worker-${i + 1}`);
  }
  return workers;
}

/**
 * Creates `<dir>/auth.conf`, `<dir>/principals.json` and `<dir>/creds/<name>.json`
 * for every principal, each with a fresh random password. Refuses an existing
 * folder unless `force`.
 */
export async function initAuth(dir: string, o: InitAuthOptions): Promise<AuthFiles> {
  const cost = o.cost ?? BCRYPT_DEFAULT_COST;
  checkCost(cost);
  const paths = authPaths(dir);
  if (!o.force && ((await exists(paths.confPath)) || (await exists(paths.principalsPath)))) {
    throw new AuthConfigError(`${paths.dir} already holds an auth config; use add-user, or --force to replace every credential`, paths.dir);
  }
  const wanted: { name: string; role: Role }[] = [
    ...o.users.map((name) => ({ name, role: 'user' as const })),
    ...o.operators.map((name) => ({ name, role: 'operator' as const })),
    ...workerNames(o.workers).map((name) => ({ name, role: 'worker' as const })),
    { name: o.coordinator ?? 'coordinator', role: 'coordinator' },
  ];
  const seen = new Set<string>();
  for (const w of wanted) {
    checkName(w.name);
    if (seen.has(w.name)) throw new AuthConfigError(`principal ${w.name} is named twice; every name must be unique across roles`);
    seen.add(w.name);
  }
  const fresh = wanted.map((w) => ({ ...w, password: newPassword() }));
  const doc: PrincipalsDoc = { version: 1, cost, principals: fresh.map((f) => ({ name: f.name, role: f.role, hash: bcryptHash(f.password, { cost }) })) };
  return writeAll(dir, doc, fresh);
}

/** Adds one principal with a fresh password and re-renders auth.conf (reload the server to apply). */
export async function addUser(dir: string, name: string, role: Role = 'user'): Promise<AuthFiles> {
  checkName(name);
  if (!isRole(role)) throw new AuthConfigError(`unknown role ${JSON.stringify(role)}; one of ${Roles.join(', ')}`);
  const doc = await readPrincipals(dir);
  if (doc.principals.some((p) => p.name === name)) throw new AuthConfigError(`principal ${name} already exists in ${authPaths(dir).principalsPath}`, authPaths(dir).principalsPath);
  const password = newPassword();
  doc.principals.push({ name, role, hash: bcryptHash(password, { cost: doc.cost }) });
  return writeAll(dir, doc, [{ name, role, password }]);
}

/** Reads and checks one creds file. */
export async function readCredentials(file: string): Promise<Credentials> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AuthConfigError(`cannot read credentials ${file}: ${(err as Error).message}`, file, { cause: err });
  }
  return parseCredentials(text, file);
}

/** Checks the text of a creds file ({ user, password, role }); `file` names it in errors. */
export function parseCredentials(text: string, file: string): Credentials {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new AuthConfigError(`cannot read credentials ${file}: ${(err as Error).message}`, file, { cause: err });
  }
  const c = v as Partial<Credentials> | null;
  if (!c || typeof c.user !== 'string' || typeof c.password !== 'string' || typeof c.role !== 'string' || !isRole(c.role)) {
    throw new AuthConfigError(`${file} is not a ubatch credentials file ({ user, password, role })`, file);
  }
  return { user: c.user, password: c.password, role: c.role };
}

/** The nats.js connect() options for a principal: user, password and its own inbox prefix. */
export function connectOptionsFor(c: Credentials): { user: string; pass: string; inboxPrefix: string } {
  return { user: c.user, pass: c.password, inboxPrefix: inboxPrefixFor(c.user) };
}

/** Reads and checks one creds file, synchronously (CLI option resolution). */
export function readCredentialsSync(file: string): Credentials {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AuthConfigError(`cannot read credentials ${file}: ${(err as Error).message}`, file, { cause: err });
  }
  return parseCredentials(text, file);
}

/** The principals (name and role) in an auth folder; undefined when the folder has no principals.json. */
export async function listPrincipals(dir: string): Promise<{ name: string; role: Role }[] | undefined> {
  if (!(await exists(authPaths(dir).principalsPath))) return undefined;
  return (await readPrincipals(dir)).principals.map((p) => ({ name: p.name, role: p.role }));
}

/**
 * Makes sure `dir` holds an auth config with (at least) these principals: `auth init` when the
 * folder is new, `add-user` for each one missing. Returns the names it added (a running server
 * needs a reload for them). Used by the embedded stack on every start.
 */
export async function ensurePrincipals(dir: string, wanted: { name: string; role: Role }[], o: { cost?: number } = {}): Promise<{ created: boolean; added: string[] }> {
  const have = await listPrincipals(dir);
  if (!have) {
    const coordinator = wanted.find((w) => w.role === 'coordinator')?.name;
    await initAuth(dir, {
      users: wanted.filter((w) => w.role === 'user').map((w) => w.name),
      operators: wanted.filter((w) => w.role === 'operator').map((w) => w.name),
      workers: wanted.filter((w) => w.role === 'worker').map((w) => w.name),
      ...(coordinator ? { coordinator } : {}),
      ...(o.cost !== undefined ? { cost: o.cost } : {}),
    });
    return { created: true, added: wanted.map((w) => w.name) };
  }
  const added: string[] = [];
  for (const w of wanted) {
    const h = have.find((p) => p.name === w.name);
    if (h) {
      if (h.role !== w.role) throw new AuthConfigError(`principal ${w.name} exists in ${authPaths(dir).principalsPath} as a ${h.role}, not a ${w.role}`, authPaths(dir).principalsPath);
      continue;
    }
    await addUser(dir, w.name, w.role);
    added.push(w.name);
  }
  return { created: false, added };
}

// ---------------------------------------------------------------------------
// TLS (a private CA and a server certificate, made with the openssl CLI)

export interface TlsFiles {
  dir: string;
  /** the CA certificate clients verify the server with (hand it to every client host) */
  ca: string;
  /** the CA's private key: keep it off the servers; needed only to issue more certificates */
  caKey: string;
  /** the server certificate (SANs: localhost, 127.0.0.1, ::1 and the --hosts) */
  cert: string;
  /** the server's private key, mode 0600 */
  key: string;
  /** a nats-server config fragment: `tls { cert_file, key_file, ca_file }` with absolute paths */
  conf: string;
  hosts: string[];
}

/** The openssl CLI is missing (the Makefile installs it). */
export class OpensslMissingError extends AuthConfigError {
  override name = 'OpensslMissingError';
}

export function tlsPaths(dir: string): Omit<TlsFiles, 'hosts'> {
  const d = path.resolve(dir);
  return { dir: d, ca: path.join(d, 'ca.pem'), caKey: path.join(d, 'ca-key.pem'), cert: path.join(d, 'server-cert.pem'), key: path.join(d, 'server-key.pem'), conf: path.join(d, 'tls.conf') };
}

function findOpenssl(): string | undefined {
  for (const d of [...(process.env['PATH'] ?? '').split(':'), '/usr/bin', '/bin', '/usr/local/bin']) {
    if (d !== '' && existsSync(path.join(d, 'openssl'))) return path.join(d, 'openssl');
  }
  return undefined;
}

function runOpenssl(bin: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err) reject(new AuthConfigError(`openssl ${args[0]} failed: ${stderr.trim() || err.message}`, undefined, { cause: err }));
      else resolve();
    });
  });
}

const IP_RE = /^(\d{1,3}(\.\d{1,3}){3}|[0-9A-Fa-f:]+:[0-9A-Fa-f:]*)$/;

/** Subject alternative names for the server certificate: localhost and loopback always, then `hosts` (names or IPs). */
export function subjectAltNames(hosts: string[]): string {
  const names = [...new Set(['localhost', '127.0.0.1', '::1', ...hosts.map((h) => h.trim()).filter((h) => h !== '')])];
  for (const h of names) if (!/^[A-Za-z0-9.*:_-]+$/.test(h)) throw new AuthConfigError(`invalid host name ${JSON.stringify(h)} for the server certificate`);
  return names.map((h) => (IP_RE.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
}

/**
 * Creates a private CA (ca.pem, ca-key.pem) and a server certificate signed by it
 * (server-cert.pem, server-key.pem; SANs localhost, 127.0.0.1, ::1 and `hosts`) plus
 * tls.conf, in `dir`, with the openssl CLI. Refuses an existing folder unless `force`.
 */
export async function initTls(dir: string, o: { hosts?: string[]; days?: number; force?: boolean } = {}): Promise<TlsFiles> {
  const p = tlsPaths(dir);
  const bin = findOpenssl();
  if (!bin) throw new OpensslMissingError("the openssl command is not installed (needed to make TLS certificates); install it with 'make deps' or 'apt-get install openssl'");
  if (!o.force && existsSync(p.ca)) throw new AuthConfigError(`${p.dir} already holds a CA (ca.pem); use --force to replace it (every client then needs the new ca.pem)`, p.dir);
  await mkdir(p.dir, { recursive: true, mode: 0o700 });
  const days = String(o.days ?? 825);
  const hosts = o.hosts ?? [];
  const san = subjectAltNames(hosts);
  const csr = path.join(p.dir, 'server.csr');
  const ext = path.join(p.dir, 'server.ext');
  await runOpenssl(bin, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p.caKey, '-out', p.ca, '-days', days, '-subj', '/CN=ubatch local CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await runOpenssl(bin, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p.key, '-out', csr, '-subj', `/CN=${hosts[0] ?? 'localhost'}`]);
  await writeFile(ext, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
  await runOpenssl(bin, ['x509', '-req', '-in', csr, '-CA', p.ca, '-CAkey', p.caKey, '-CAcreateserial', '-out', p.cert, '-days', days, '-extfile', ext]);
  await rm(csr, { force: true });
  await rm(ext, { force: true });
  await rm(path.join(p.dir, 'ca.srl'), { force: true });
  await chmod(p.key, 0o600);
  await chmod(p.caKey, 0o600);
  await writeFile(p.conf, `# ubatch TLS for nats-server, generated by 'ubatch auth tls-init' at ${new Date().toISOString()}\ntls {\n  cert_file: ${q(p.cert)}\n  key_file: ${q(p.key)}\n  ca_file: ${q(p.ca)}\n  timeout: 2\n}\n`);
  return { ...p, hosts };
}

/** The TLS files in `dir` when a CA and server certificate are there, else undefined. */
export function existingTls(dir: string): TlsFiles | undefined {
  const p = tlsPaths(dir);
  return existsSync(p.ca) && existsSync(p.cert) && existsSync(p.key) ? { ...p, hosts: [] } : undefined;
}
