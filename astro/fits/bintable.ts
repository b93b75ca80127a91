/**
 * Just enough binary-table layout to address fixed columns and variable-length
 * array descriptors (P/Q) — what tile-compressed images need.
 */
import type { FitsHeader } from './header.js';
import { FitsFormatError } from './errors.js';

export interface BinColumn {
  index: number; // 1-based TFORM index
  name: string;
  /** repeat count */
  repeat: number;
  /** type code L X B I J K A E D C M P Q */
  code: string;
  /** element type of a P/Q column's heap array */
  heapCode?: string;
  /** byte offset within a row */
  offset: number;
  /** bytes in the row */
  width: number;
}

const CODE_BYTES: Record<string, number> = { L: 1, B: 1, I: 2, J: 4, K: 8, A: 1, E: 4, D: 8, C: 8, M: 16, P: 8, Q: 16 };

export function elementBytes(code: string): number {
  const n = CODE_BYTES[code];
  if (n === undefined) throw new FitsFormatError(`unknown binary table type code ${code}`);
  return n;
}

export function parseBinTableColumns(h: FitsHeader, ctx: { path?: string; hdu?: number }): { columns: BinColumn[]; rowBytes: number } {
  const nfields = h.getNumber('TFIELDS') ?? 0;
  const columns: BinColumn[] = [];
  let offset = 0;
  for (let i = 1; i <= nfields; i++) {
    const tform = (h.getString(`TFORM${i}`) ?? '').trim().toUpperCase();
    const m = /^(\d*)([LXBIJKAEDCMPQ])(.*)$/.exec(tform);
    if (m === null) throw new FitsFormatError(`bad TFORM${i} ${JSON.stringify(tform)}`, ctx);
    const repeat = m[1] === '' || m[1] === undefined ? 1 : Number(m[1]);
    const code = m[2] as string;
    let width: number;
    let heapCode: string | undefined;
    if (code === 'X') width = Math.ceil(repeat / 8);
    else width = repeat * elementBytes(code);
    if (code === 'P' || code === 'Q') {
      const hm = /^([LXBIJKAEDCM])/.exec(m[3] ?? '');
      heapCode = hm?.[1] ?? 'B';
    }
    const name = (h.getString(`TTYPE${i}`) ?? '').trim().toUpperCase();
    const col: BinColumn = { index: i, name, repeat, code, offset, width };
    if (heapCode !== undefined) col.heapCode = heapCode;
    columns.push(col);
    offset += width;
  }
  const naxis1 = h.getNumber('NAXIS1') ?? offset;
  if (naxis1 !== offset) throw new FitsFormatError(`NAXIS1=${naxis1} but TFORMs add up to ${offset} bytes per row`, ctx);
  return { columns, rowBytes: offset };
}

/** Read a P/Q descriptor: [element count, heap byte offset]. */
export function readDescriptor(view: DataView, rowStart: number, col: BinColumn): [number, number] {
  const at = rowStart + col.offset;
  if (col.code === 'P') return [view.getInt32(at, false), view.getInt32(at + 4, false)];
  return [Number(view.getBigInt64(at, false)), Number(view.getBigInt64(at + 8, false))];
}

/** Read a fixed scalar numeric cell (first element). */
export function readScalar(view: DataView, rowStart: number, col: BinColumn): number {
  const at = rowStart + col.offset;
  switch (col.code) {
    case 'B':
      return view.getUint8(at);
    case 'I':
      return view.getInt16(at, false);
    case 'J':
      return view.getInt32(at, false);
    case 'K':
      return Number(view.getBigInt64(at, false));
    case 'E':
      return view.getFloat32(at, false);
    case 'D':
      return view.getFloat64(at, false);
    default:
      throw new FitsFormatError(`column ${col.name}: type ${col.code} is not a numeric scalar`);
  }
}
