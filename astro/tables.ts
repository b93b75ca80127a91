/** DuckDB SQL fragments for reading plain tables (Parquet or CSV) — shared by planners and executors. */
import { extname } from 'node:path';
import { sqlString } from './hats/duck.js';

export { sqlString };

export function isCsvPath(f: string): boolean {
  const l = f.toLowerCase();
  return ['.csv', '.tsv'].includes(extname(l)) || l.endsWith('.csv.gz');
}

/** Table function reading one partition's files: read_csv for .csv inputs, read_parquet otherwise. */
export function readFilesSql(files: readonly string[]): string {
  const list = `[${files.map(sqlString).join(', ')}]`;
  // union_by_name costs a schema pass over every file: only needed when several files may differ
  const union = files.length > 1 ? ', union_by_name = true' : '';
  return files.every(isCsvPath) ? `read_csv(${list}, auto_detect = true, header = true${union})` : `read_parquet(${list}${union})`;
}
