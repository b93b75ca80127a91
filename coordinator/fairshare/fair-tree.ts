import { InvalidFairShareOptionError, InvalidShareTreeError, InvalidUsageRecordError } from './errors.js';
import { checkGroupName, checkUserName } from './tenant.js';

/**
 * Shares: root -> groups (collaborations) -> users. A user may appear under
 * several groups; each (group, user) pair is a separate tenant. Shares are raw
 * numbers (>= 0) compared only among siblings.
 */
export interface ShareTree {
  groups: Record<string, { share: number; users: Record<string, { share: number }> }>;
}

/**
 * Decayed usage lookup: `usage(group)` is the group's decayed usage,
 * `usage(group, user)` the tenant's. `DecayedUsage.usageAt(t)` builds one.
 */
export type UsageLookup = (group: string, user?: string) => number;

/** One tenant's place in the Fair Tree ranking. */
export interface TenantRank {
  group: string;
  user: string;
  /** `${group}.${user}` */
  tenant: string;
  /** 1 = best. Tied tenants share the best rank of their tie (competition ranking: 1, 2, 2, 4). */
  rank: number;
  /** Slurm's fair-share factor (N - rank + 1) / N in (0, 1]; the best tenant gets 1. */
  fairShareFactor: number;
  /** Level FS = S / U of the tenant's group among groups, and of the user among the group's users (Infinity when U = 0). */
  levelFs: { group: number; user: number };
  /** The tenant's decayed usage as given by the lookup. */
  decayedUsage: number;
  /** Normalised shares S = share / sum(sibling shares) at each level. */
  share: { group: number; user: number };
}

/** A group's place at the top level of the tree. */
export interface GroupRank {
  group: string;
  /** 1 = best; tied groups (same Level FS) share a rank. */
  rank: number;
  levelFs: number;
  /** Normalised share S among groups. */
  share: number;
  decayedUsage: number;
  /** Number of tenants (users) of the group in the tree. */
  tenants: number;
}

export interface FairTreeOptions {
  /**
   * Two Level FS values a, b (a >= b) tie when a - b <= tolerance * a, measured from
   * the first (largest) value of a run. Decayed usage folded along different
   * histories can differ in the last bits for equal usage; this keeps such
   * tenants tied. 0 demands exact equality, as Slurm does.
   * @default 1e-12
   */
  relativeTieTolerance?: number;
}

export interface FairTreeResult {
  /** Tenants in priority order (best first). */
  tenants: TenantRank[];
  /** Groups in priority order (best first). */
  groups: GroupRank[];
}

interface Node {
  name: string;
  rawShare: number;
  usage: number;
  share: number;
  levelFs: number;
}

interface UserNode extends Node {
  group: string;
  groupNode: GroupNode;
}

interface GroupNode extends Node {
  users: UserNode[];
}

/**
 * Ranks tenants the way Slurm's Fair Tree algorithm does
 * (https://slurm.schedmd.com/fair_tree.html):
 *
 * - at each level, siblings get Level FS = S / U with S = share / sum(sibling shares)
 *   and U = usage / sum(sibling usage); U = 0 gives Infinity (best) unless S = 0,
 *   which gives 0 (worst) — Slurm's rule;
 * - siblings are sorted by Level FS, highest first, and the tree is walked depth
 *   first, so every user of a better group ranks before every user of a worse one.
 *
 * Ties follow Slurm's rules: sibling users with equal Level FS share a rank (the
 * best of the tie; the next distinct user's rank skips the tied places); sibling
 * groups with equal Level FS have their user lists merged, and the merged users are
 * ranked by their own Level FS (each computed within its own group). Slurm leaves
 * the order inside a tie to qsort; here it is deterministic: tied groups by group
 * name, tied users by group name then user name (UTF-16 code-unit order).
 *
 * The result is in priority order; `rank` is 1 for the best tenant and the
 * fair-share factor is Slurm's rank / user-association count, i.e. (N - rank + 1) / N.
 */
export function fairTreeRanking(tree: ShareTree, usage: UsageLookup, opts: FairTreeOptions = {}): TenantRank[] {
  return computeFairTree(tree, usage, opts).tenants;
}

/** The group-level ranking alone (what decides which group's users come first). */
export function fairTreeGroups(tree: ShareTree, usage: UsageLookup, opts: FairTreeOptions = {}): GroupRank[] {
  return computeFairTree(tree, usage, opts).groups;
}

/** Both levels of the Fair Tree ranking in one pass. */
export function computeFairTree(tree: ShareTree, usage: UsageLookup, opts: FairTreeOptions = {}): FairTreeResult {
  const tolerance = opts.relativeTieTolerance ?? 1e-12;
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0 || tolerance >= 1) {
    throw new InvalidFairShareOptionError('relativeTieTolerance', tolerance, 'must be a number in [0, 1)');
  }
  const groups = buildGroups(tree, usage);
  levelFairShare(groups);
  for (const g of groups) levelFairShare(g.users);

  const tenantCount = groups.reduce((n, g) => n + g.users.length, 0);
  const tenants: TenantRank[] = [];
  const groupRanks: GroupRank[] = [];
  // position = rank the next tenant would get if it tied with nobody (Slurm's "rnt")
  let position = 1;
  let groupPosition = 1;

  for (const groupRun of tieRuns(sortByLevelFs(groups, byName), tolerance, byName)) {
    const groupRank = groupPosition;
    for (const g of groupRun) {
      groupRanks.push({
        group: g.name,
        rank: groupRank,
        levelFs: g.levelFs,
        share: g.share,
        decayedUsage: g.usage,
        tenants: g.users.length,
      });
      groupPosition++;
    }
    // tied groups are merged: their users compete with one another
    const merged: UserNode[] = groupRun.length === 1 ? [...(groupRun[0]?.users ?? [])] : groupRun.flatMap((g) => g.users);
    for (const userRun of tieRuns(sortByLevelFs(merged, byGroupThenName), tolerance, byGroupThenName)) {
      const rank = position;
      for (const u of userRun) {
        tenants.push({
          group: u.group,
          user: u.name,
          tenant: `${u.group}.${u.name}`,
          rank,
          fairShareFactor: (tenantCount - rank + 1) / tenantCount,
          levelFs: { group: u.groupNode.levelFs, user: u.levelFs },
          decayedUsage: u.usage,
          share: { group: u.groupNode.share, user: u.share },
        });
        position++;
      }
    }
  }
  return { tenants, groups: groupRanks };
}

function buildGroups(tree: ShareTree, usage: UsageLookup): GroupNode[] {
  if (tree === null || typeof tree !== 'object' || tree.groups === null || typeof tree.groups !== 'object') {
    throw new InvalidShareTreeError('groups', tree, 'a share tree needs a `groups` object');
  }
  const groups: GroupNode[] = [];
  for (const [groupName, groupSpec] of Object.entries(tree.groups)) {
    const path = `groups.${groupName}`;
    try {
      checkGroupName(groupName);
    } catch (err) {
      throw new InvalidShareTreeError(path, groupName, 'bad group name', { cause: err });
    }
    checkShare(`${path}.share`, groupSpec?.share);
    if (groupSpec.users === null || typeof groupSpec.users !== 'object') {
      throw new InvalidShareTreeError(`${path}.users`, groupSpec.users, 'must be an object of users');
    }
    const groupNode: GroupNode = {
      name: groupName,
      rawShare: groupSpec.share,
      usage: checkUsage(usage(groupName), groupName),
      share: 0,
      levelFs: 0,
      users: [],
    };
    for (const [userName, userSpec] of Object.entries(groupSpec.users)) {
      try {
        checkUserName(userName);
      } catch (err) {
        throw new InvalidShareTreeError(`${path}.users.${userName}`, userName, 'bad user name', { cause: err });
      }
      checkShare(`${path}.users.${userName}.share`, userSpec?.share);
      groupNode.users.push({
        name: userName,
        group: groupName,
        groupNode,
        rawShare: userSpec.share,
        usage: checkUsage(usage(groupName, userName), `${groupName}.${userName}`),
        share: 0,
        levelFs: 0,
      });
    }
    groups.push(groupNode);
  }
  return groups;
}

/** Sets S, and LF = S / U, for one set of siblings. */
function levelFairShare(siblings: Node[]): void {
  let shareSum = 0;
  let usageSum = 0;
  for (const n of siblings) {
    shareSum += n.rawShare;
    usageSum += n.usage;
  }
  for (const n of siblings) {
    n.share = shareSum > 0 ? n.rawShare / shareSum : 0;
    const u = usageSum > 0 ? n.usage / usageSum : 0;
    // Slurm: S = 0 is the lowest Level FS whatever the usage; U = 0 (S > 0) is Infinity
    n.levelFs = n.share === 0 ? 0 : n.share / u;
  }
}

function byName(a: Node, b: Node): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function byGroupThenName(a: UserNode, b: UserNode): number {
  if (a.group !== b.group) return a.group < b.group ? -1 : 1;
  return byName(a, b);
}

function sortByLevelFs<T extends Node>(nodes: T[], tieBreak: (a: T, b: T) => number): T[] {
  return nodes.sort((a, b) => (a.levelFs !== b.levelFs ? (a.levelFs < b.levelFs ? 1 : -1) : tieBreak(a, b)));
}

/**
 * Splits nodes sorted by Level FS (descending) into runs of tied values, each run
 * ordered by `tieBreak`. Ties are measured from the run's first value, so the
 * split is a pure function of the values.
 */
function tieRuns<T extends Node>(sorted: T[], tolerance: number, tieBreak: (a: T, b: T) => number): T[][] {
  const runs: T[][] = [];
  let run: T[] = [];
  let head = 0;
  for (const n of sorted) {
    const tied =
      run.length > 0 &&
      (n.levelFs === head || (Number.isFinite(head) && head - n.levelFs <= tolerance * head));
    if (tied) {
      run.push(n);
    } else {
      if (run.length > 0) runs.push(run.length > 1 ? run.sort(tieBreak) : run);
      run = [n];
      head = n.levelFs;
    }
  }
  if (run.length > 0) runs.push(run.length > 1 ? run.sort(tieBreak) : run);
  return runs;
}

function checkShare(path: string, share: unknown): asserts share is number {
  if (typeof share !== 'number' || !Number.isFinite(share) || share < 0) {
    throw new InvalidShareTreeError(path, share, 'a share must be a finite number >= 0');
  }
}

function checkUsage(value: unknown, who: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidUsageRecordError('decayedUsage', value, who, 'the usage lookup must return a finite number >= 0');
  }
  return value;
}
