/**
 * `hats.properties` / `properties` / `collection.properties`: Java-properties
 * style `key=value` lines, `#` or `!` comments, blank lines ignored.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { HatsPropertiesError } from './errors.js';

export function parseProperties(text: string, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const eq = line.search(/[=:]/);
    if (eq <= 0) {
      throw new HatsPropertiesError(
        `malformed line ${i + 1} in ${path}: expected key=value, got ${JSON.stringify(raw.slice(0, 80))}`,
        path,
        i + 1,
      );
    }
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z0-9_.\-]+$/.test(key)) {
      throw new HatsPropertiesError(`malformed key ${JSON.stringify(key)} on line ${i + 1} of ${path}`, path, i + 1);
    }
    out[key] = line.slice(eq + 1).trim();
  }
  return out;
}

export async function readPropertiesFile(path: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new HatsPropertiesError(`cannot read properties file ${path}`, path, undefined, { cause: err });
  }
  return parseProperties(text, path);
}

export function formatProperties(props: Record<string, string>, header = '#HATS catalog'): string {
  const lines = [header];
  for (const [k, v] of Object.entries(props)) {
    if (/[\r\n]/.test(v) || /[\r\n=]/.test(k)) {
      throw new HatsPropertiesError(`property ${JSON.stringify(k)} has a line break or '=' in it`, '');
    }
    lines.push(`${k}=${v}`);
  }
  return lines.join('\n') + '\n';
}

export async function writePropertiesFile(path: string, props: Record<string, string>, header?: string): Promise<void> {
  await writeFile(path, formatProperties(props, header));
}

/** Parse an integer property; undefined when absent, HatsPropertiesError when not an integer. */
export function intProperty(props: Record<string, string>, key: string, path: string): number | undefined {
  const v = props[key];
  if (v === undefined || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw new HatsPropertiesError(`property ${key}=${JSON.stringify(v)} in ${path} is not an integer`, path);
  return Number(v);
}

/** Parse a float property; undefined when absent, HatsPropertiesError when not a finite number. */
export function floatProperty(props: Record<string, string>, key: string, path: string): number | undefined {
  const v = props[key];
  if (v === undefined || v === '') return undefined;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new HatsPropertiesError(`property ${key}=${JSON.stringify(v)} in ${path} is not a number`, path);
  return x;
}
