/**
 * Minimal Parquet footer access without decoding any data pages.
 *
 * DuckDB's `parquet_metadata()` does not expose a column chunk's `file_path`,
 * which is how a dataset-level `_metadata` file says which leaf holds each row
 * group; and DuckDB cannot write such a footer-only file. So we read and write
 * the footer (Thrift compact protocol, FileMetaData) ourselves. The codec is
 * generic (field id -> typed value, original field order kept), so a decoded
 * footer re-encodes byte-for-byte and we only touch the fields we know:
 *   FileMetaData: 2 schema, 3 num_rows, 4 row_groups, 5 key_value_metadata
 *   RowGroup: 1 columns, 2 total_byte_size, 3 num_rows
 *   ColumnChunk: 1 file_path, 2 file_offset, 3 meta_data
 *   ColumnMetaData: 1 type, 3 path_in_schema, 12 statistics
 *   Statistics: 1 max, 2 min, 5 max_value, 6 min_value
 */
import { open, writeFile } from 'node:fs/promises';
import { HatsParquetError } from './errors.js';

/** Thrift compact type codes. */
const T = {
  STOP: 0,
  TRUE: 1,
  FALSE: 2,
  BYTE: 3,
  I16: 4,
  I32: 5,
  I64: 6,
  DOUBLE: 7,
  BINARY: 8,
  LIST: 9,
  SET: 10,
  MAP: 11,
  STRUCT: 12,
} as const;

export type ThriftValue =
  | { t: 'bool'; v: boolean }
  | { t: 'i8' | 'i16' | 'i32'; v: number }
  | { t: 'i64'; v: bigint }
  | { t: 'double'; v: number }
  | { t: 'binary'; v: Uint8Array }
  | { t: 'list' | 'set'; et: number; v: ThriftValue[] }
  | { t: 'map'; kt: number; vt: number; v: [ThriftValue, ThriftValue][] }
  | { t: 'struct'; v: ThriftStruct };

/** Fields in the order they were read (or will be written). */
export type ThriftStruct = Map<number, ThriftValue>;

class Reader {
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly path: string,
  ) {}

  byte(): number {
    const b = this.buf[this.pos];
    if (b === undefined) throw new HatsParquetError(`Parquet footer of ${this.path} ends early (offset ${this.pos})`, this.path);
    this.pos++;
    return b;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new HatsParquetError(`Parquet footer of ${this.path}: varint too long at ${this.pos}`, this.path);
    }
  }

  /** Small varint (lengths, sizes) as a number. */
  uvarint(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
      if (mul > 2 ** 49) throw new HatsParquetError(`Parquet footer of ${this.path}: length varint too long`, this.path);
    }
  }

  zigzag(): bigint {
    const n = this.varint();
    return (n >> 1n) ^ -(n & 1n);
  }

  bytes(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) {
      throw new HatsParquetError(`Parquet footer of ${this.path}: binary of ${n} bytes runs past the end`, this.path);
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  value(type: number, depth: number): ThriftValue {
    if (depth > 64) throw new HatsParquetError(`Parquet footer of ${this.path}: nesting too deep`, this.path);
    switch (type) {
      case T.TRUE:
        return { t: 'bool', v: true };
      case T.FALSE:
        return { t: 'bool', v: false };
      case T.BYTE: {
        const b = this.byte();
        return { t: 'i8', v: b > 127 ? b - 256 : b };
      }
      case T.I16:
        return { t: 'i16', v: Number(this.zigzag()) };
      case T.I32:
        return { t: 'i32', v: Number(this.zigzag()) };
      case T.I64:
        return { t: 'i64', v: this.zigzag() };
      case T.DOUBLE: {
        const b = this.bytes(8);
        return { t: 'double', v: new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true) };
      }
      case T.BINARY:
        return { t: 'binary', v: this.bytes(this.uvarint()) };
      case T.LIST:
      case T.SET: {
        const head = this.byte();
        let size = head >> 4;
        const et = head & 0x0f;
        if (size === 15) size = this.uvarint();
        const v: ThriftValue[] = [];
        for (let i = 0; i < size; i++) {
          // Booleans inside containers are one byte each.
          if (et === T.TRUE || et === T.FALSE) v.push({ t: 'bool', v: this.byte() === 1 });
          else v.push(this.value(et, depth + 1));
        }
        return { t: type === T.LIST ? 'list' : 'set', et, v };
      }
      case T.MAP: {
        const size = this.uvarint();
        if (size === 0) return { t: 'map', kt: 0, vt: 0, v: [] };
        const kv = this.byte();
        const kt = kv >> 4;
        const vt = kv & 0x0f;
        const v: [ThriftValue, ThriftValue][] = [];
        for (let i = 0; i < size; i++) v.push([this.value(kt, depth + 1), this.value(vt, depth + 1)]);
        return { t: 'map', kt, vt, v };
      }
      case T.STRUCT:
        return { t: 'struct', v: this.struct(depth + 1) };
      default:
        throw new HatsParquetError(`Parquet footer of ${this.path}: unknown Thrift type ${type} at ${this.pos - 1}`, this.path);
    }
  }

  struct(depth = 0): ThriftStruct {
    const fields: ThriftStruct = new Map();
    let last = 0;
    for (;;) {
      const head = this.byte();
      const type = head & 0x0f;
      if (type === T.STOP) return fields;
      const delta = head >> 4;
      const id = delta === 0 ? Number(this.zigzag()) : last + delta;
      fields.set(id, this.value(type, depth));
      last = id;
    }
  }
}

class Writer {
  private chunks: number[] = [];

  byte(b: number): void {
    this.chunks.push(b & 0xff);
  }

  varint(n: bigint): void {
    let x = n;
    for (;;) {
      if (x < 0x80n) {
        this.byte(Number(x));
        return;
      }
      this.byte(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
  }

  zigzag(n: bigint, bits: bigint): void {
    this.varint(BigInt.asUintN(Number(bits), (n << 1n) ^ (n >> (bits - 1n))));
  }

  bytes(b: Uint8Array): void {
    for (const x of b) this.chunks.push(x);
  }

  typeCode(v: ThriftValue): number {
    switch (v.t) {
      case 'bool':
        return v.v ? T.TRUE : T.FALSE;
      case 'i8':
        return T.BYTE;
      case 'i16':
        return T.I16;
      case 'i32':
        return T.I32;
      case 'i64':
        return T.I64;
      case 'double':
        return T.DOUBLE;
      case 'binary':
        return T.BINARY;
      case 'list':
        return T.LIST;
      case 'set':
        return T.SET;
      case 'map':
        return T.MAP;
      case 'struct':
        return T.STRUCT;
    }
  }

  value(v: ThriftValue): void {
    switch (v.t) {
      case 'bool':
        return; // carried in the field header
      case 'i8':
        this.byte(v.v);
        return;
      case 'i16':
        this.zigzag(BigInt(v.v), 16n);
        return;
      case 'i32':
        this.zigzag(BigInt(v.v), 32n);
        return;
      case 'i64':
        this.zigzag(v.v, 64n);
        return;
      case 'double': {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setFloat64(0, v.v, true);
        this.bytes(b);
        return;
      }
      case 'binary':
        this.varint(BigInt(v.v.length));
        this.bytes(v.v);
        return;
      case 'list':
      case 'set': {
        const n = v.v.length;
        if (n < 15) this.byte((n << 4) | v.et);
        else {
          this.byte(0xf0 | v.et);
          this.varint(BigInt(n));
        }
        for (const item of v.v) {
          if (item.t === 'bool') this.byte(item.v ? 1 : 2);
          else this.value(item);
        }
        return;
      }
      case 'map': {
        this.varint(BigInt(v.v.length));
        if (v.v.length === 0) return;
        this.byte((v.kt << 4) | v.vt);
        for (const [k, x] of v.v) {
          this.value(k);
          this.value(x);
        }
        return;
      }
      case 'struct':
        this.struct(v.v);
        return;
    }
  }

  struct(s: ThriftStruct): void {
    let last = 0;
    const ids = [...s.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const v = s.get(id);
      if (v === undefined) continue;
      const code = this.typeCode(v);
      const delta = id - last;
      if (delta > 0 && delta <= 15) this.byte((delta << 4) | code);
      else {
        this.byte(code);
        this.zigzag(BigInt(id), 16n);
      }
      this.value(v);
      last = id;
    }
    this.byte(T.STOP);
  }

  result(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

export function decodeThriftStruct(buf: Uint8Array, path = '<buffer>'): ThriftStruct {
  return new Reader(buf, path).struct();
}

export function encodeThriftStruct(s: ThriftStruct): Uint8Array {
  const w = new Writer();
  w.struct(s);
  return w.result();
}

const MAGIC = 'PAR1';

/** Read the raw (still Thrift-encoded) footer of a Parquet file. */
export async function readFooterBytes(path: string): Promise<Uint8Array> {
  return (await readFooterAndSize(path)).footer;
}

/** The end of the file read in one go: enough for the footer of most leaves (a second read fetches a longer one). */
const TAIL_GUESS = 64 * 1024;

/** The raw footer bytes and the file's size, in as few reads as possible (open, fstat, one read, close). */
export async function readFooterAndSize(path: string): Promise<{ footer: Uint8Array; size: number }> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new HatsParquetError(`cannot open Parquet file ${path}`, path, { cause: err });
  }
  try {
    const { size } = await fh.stat();
    if (size < 12) throw new HatsParquetError(`${path} is too small to be a Parquet file (${size} bytes)`, path);
    const tailLen = Math.min(size, TAIL_GUESS);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    if (tail.toString('latin1', tailLen - 4, tailLen) !== MAGIC) {
      throw new HatsParquetError(`${path} is not a Parquet file (no PAR1 magic at its end)`, path);
    }
    const len = tail.readUInt32LE(tailLen - 8);
    if (len + 12 > size) throw new HatsParquetError(`${path}: footer length ${len} exceeds file size ${size}`, path);
    if (len + 8 <= tailLen) return { footer: new Uint8Array(tail.buffer, tail.byteOffset + tailLen - 8 - len, len), size };
    const footer = Buffer.alloc(len);
    await fh.read(footer, 0, len, size - 8 - len);
    return { footer: new Uint8Array(footer.buffer, footer.byteOffset, footer.length), size };
  } finally {
    await fh.close();
  }
}

/** Decode the FileMetaData of a Parquet file. */
export async function readFileMetaData(path: string): Promise<ThriftStruct> {
  return decodeThriftStruct(await readFooterBytes(path), path);
}

/** Write a footer-only Parquet file (what `_metadata` / `_common_metadata` are). */
export async function writeFooterOnlyParquet(path: string, meta: ThriftStruct): Promise<void> {
  const body = encodeThriftStruct(meta);
  const out = Buffer.alloc(4 + body.length + 8);
  out.write(MAGIC, 0, 'latin1');
  Buffer.from(body.buffer, body.byteOffset, body.length).copy(out, 4);
  out.writeUInt32LE(body.length, 4 + body.length);
  out.write(MAGIC, 8 + body.length, 'latin1');
  await writeFile(path, out);
}

// ---------- typed views over the generic structure ----------

function field(s: ThriftStruct, id: number): ThriftValue | undefined {
  return s.get(id);
}

function asStruct(v: ThriftValue | undefined): ThriftStruct | undefined {
  return v?.t === 'struct' ? v.v : undefined;
}

function asList(v: ThriftValue | undefined): ThriftValue[] {
  return v?.t === 'list' ? v.v : [];
}

function asInt(v: ThriftValue | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v.t === 'i64') return Number(v.v);
  if (v.t === 'i32' || v.t === 'i16' || v.t === 'i8') return v.v;
  return undefined;
}

const utf8 = new TextDecoder();

function asString(v: ThriftValue | undefined): string | undefined {
  return v?.t === 'binary' ? utf8.decode(v.v) : undefined;
}

/** Parquet physical type codes (ColumnMetaData.type). */
const PHYSICAL_INT64 = 2;

export interface RowGroupSummary {
  /** `file_path` of the first column chunk (relative to the `_metadata` dir), if any. */
  filePath?: string;
  numRows: number;
  /** min/max statistics of INT64 columns, by dotted column path. */
  int64Stats: Map<string, { min: bigint; max: bigint }>;
}

export interface FooterSummary {
  numRows: number;
  rowGroups: RowGroupSummary[];
  keyValue: Map<string, string>;
}

function readInt64Le(b: Uint8Array): bigint | undefined {
  if (b.length !== 8) return undefined;
  return new DataView(b.buffer, b.byteOffset, 8).getBigInt64(0, true);
}

/** Pull row counts, file paths and INT64 statistics out of a decoded footer. */
export function summarizeFooter(meta: ThriftStruct): FooterSummary {
  const rowGroups: RowGroupSummary[] = [];
  for (const rgv of asList(field(meta, 4))) {
    const rg = asStruct(rgv);
    if (!rg) continue;
    const int64Stats = new Map<string, { min: bigint; max: bigint }>();
    let filePath: string | undefined;
    for (const ccv of asList(field(rg, 1))) {
      const cc = asStruct(ccv);
      if (!cc) continue;
      filePath ??= asString(field(cc, 1));
      const md = asStruct(field(cc, 3));
      if (!md || asInt(field(md, 1)) !== PHYSICAL_INT64) continue;
      const colPath = asList(field(md, 3))
        .map((p) => asString(p) ?? '')
        .join('.');
      const stats = asStruct(field(md, 12));
      if (!stats) continue;
      const minV = field(stats, 6) ?? field(stats, 2);
      const maxV = field(stats, 5) ?? field(stats, 1);
      if (minV?.t !== 'binary' || maxV?.t !== 'binary') continue;
      const min = readInt64Le(minV.v);
      const max = readInt64Le(maxV.v);
      if (min !== undefined && max !== undefined) int64Stats.set(colPath, { min, max });
    }
    const summary: RowGroupSummary = { numRows: asInt(field(rg, 3)) ?? 0, int64Stats };
    if (filePath !== undefined) summary.filePath = filePath;
    rowGroups.push(summary);
  }
  const keyValue = new Map<string, string>();
  for (const kvv of asList(field(meta, 5))) {
    const kv = asStruct(kvv);
    if (!kv) continue;
    const k = asString(field(kv, 1));
    if (k !== undefined) keyValue.set(k, asString(field(kv, 2)) ?? '');
  }
  return { numRows: asInt(field(meta, 3)) ?? 0, rowGroups, keyValue };
}

/** Number of rows a Parquet file holds, from its footer only. */
export async function parquetRowCount(path: string): Promise<number> {
  const meta = await readFileMetaData(path);
  return asInt(meta.get(3)) ?? 0;
}

const utf8enc = new TextEncoder();

/**
 * Build the FileMetaData of a dataset `_metadata` file: the schema of the first
 * leaf and every leaf's row groups, each column chunk's `file_path` set to the
 * leaf's path relative to the dataset directory.
 */
export function mergeFooters(leaves: { relPath: string; meta: ThriftStruct }[]): ThriftStruct {
  const first = leaves[0];
  if (!first) throw new HatsParquetError('no leaves to merge into _metadata', '');
  const rowGroups: ThriftValue[] = [];
  let total = 0n;
  for (const leaf of leaves) {
    for (const rgv of asList(leaf.meta.get(4))) {
      const rg = asStruct(rgv);
      if (!rg) continue;
      const copy: ThriftStruct = new Map(rg);
      const cols = asList(rg.get(1)).map((ccv): ThriftValue => {
        const cc = asStruct(ccv);
        if (!cc) return ccv;
        const c2: ThriftStruct = new Map(cc);
        c2.set(1, { t: 'binary', v: utf8enc.encode(leaf.relPath) });
        return { t: 'struct', v: c2 };
      });
      copy.set(1, { t: 'list', et: T.STRUCT, v: cols });
      rowGroups.push({ t: 'struct', v: copy });
      const n = rg.get(3);
      if (n?.t === 'i64') total += n.v;
    }
  }
  const out: ThriftStruct = new Map(first.meta);
  out.set(3, { t: 'i64', v: total });
  out.set(4, { t: 'list', et: T.STRUCT, v: rowGroups });
  return out;
}

/** FileMetaData of `_common_metadata`: the schema only, no row groups. */
export function schemaOnlyFooter(meta: ThriftStruct): ThriftStruct {
  const out: ThriftStruct = new Map(meta);
  out.set(3, { t: 'i64', v: 0n });
  out.set(4, { t: 'list', et: T.STRUCT, v: [] });
  return out;
}
