/** Job kinds and the worker capability each needs. */
export const KIND_CAPABILITY: Readonly<Record<string, string>> = {
  noop: 'cpu',
  'catalog.sql': 'cpu',
  command: 'container',
  periodogram: 'cpu',
  crossmatch: 'cpu',
  'image.background': 'image',
  'image.stamps': 'image',
  'image.inject': 'image',
  onnx: 'gpu',
};
export const DEFAULT_CAPABILITIES = ['cpu', 'container', 'image'] as const;

/** What the coordinator publishes in ub-shares/ranking for workers: tenants in fair-share order with released backlog. */
export interface RankingEntry {
  tenant: string;
  group: string;
  user: string;
  capability: string;
  /** tasks released into UB_TASKS and not yet finished (queued + running) */
  backlog: number;
  rank: number;
}
export interface RankingDoc {
  ts: number;
  entries: RankingEntry[];
}

/** Whether a job has a reduce stage (released when every map task is accepted). */
export function jobHasReduce(spec: { kind: string; params?: Record<string, unknown> }): boolean {
  return spec.kind === 'catalog.sql' && typeof spec.params?.reduce === 'string' && spec.params.reduce.trim() !== '';
}
