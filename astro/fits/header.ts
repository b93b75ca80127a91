/**
 * FITS header cards: parsing 80-character card images, formatting them back,
 * long-string CONTINUE cards, HIERARCH keywords, and the FitsHeader container.
 */
import { FitsFormatError, FitsWriteError } from './errors.js';

export type FitsValue = string | number | boolean | bigint | null;

/**
 * One header card. For commentary cards (COMMENT, HISTORY, blank keyword) the
 * text is held in `value` (a string); `comment` is accepted as well on write.
 * `value: null` means an undefined value (`KEY     =` with nothing after it).
 */
export interface FitsCard {
  key: string;
  value?: FitsValue;
  comment?: string;
}

export const CARD_LENGTH = 80;
export const BLOCK_LENGTH = 2880;
const COMMENTARY_KEYS = new Set(['COMMENT', 'HISTORY', '']);

export function isCommentaryKey(key: string): boolean {
  return COMMENTARY_KEYS.has(key.toUpperCase());
}

function normaliseKey(key: string): string {
  return key.trim().toUpperCase();
}

/** Ordered list of cards with keyword lookup (first occurrence wins, like astropy). */
export class FitsHeader {
  cards: FitsCard[];

  constructor(cards: FitsCard[] = []) {
    this.cards = cards.map((c) => ({ ...c, key: normaliseKey(c.key) }));
  }

  private indexOf(key: string): number {
    const k = normaliseKey(key);
    return this.cards.findIndex((c) => c.key === k);
  }

  has(key: string): boolean {
    return this.indexOf(key) >= 0;
  }

  /** Value of the first card with this keyword; `undefined` when absent, `null` when undefined-valued. */
  get(key: string): FitsValue | undefined {
    const i = this.indexOf(key);
    return i >= 0 ? this.cards[i]?.value : undefined;
  }

  /** Every value of a repeated keyword (e.g. all HISTORY texts), in order. */
  getAll(key: string): FitsValue[] {
    const k = normaliseKey(key);
    const out: FitsValue[] = [];
    for (const c of this.cards) if (c.key === k && c.value !== undefined) out.push(c.value);
    return out;
  }

  getComment(key: string): string | undefined {
    const i = this.indexOf(key);
    return i >= 0 ? this.cards[i]?.comment : undefined;
  }

  /** Numeric value (integers given as bigint are converted when exact); `undefined` if absent or not numeric. */
  getNumber(key: string): number | undefined {
    const v = this.get(key);
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    return undefined;
  }

  getString(key: string): string | undefined {
    const v = this.get(key);
    return typeof v === 'string' ? v : undefined;
  }

  getBoolean(key: string): boolean | undefined {
    const v = this.get(key);
    return typeof v === 'boolean' ? v : undefined;
  }

  /**
   * Replace the first card with this keyword (keeping its comment unless a new
   * one is given) or append a new one. Commentary keywords always append.
   */
  set(key: string, value: FitsValue, comment?: string): void {
    const k = normaliseKey(key);
    if (isCommentaryKey(k)) {
      this.cards.push({ key: k, value });
      return;
    }
    const i = this.indexOf(k);
    if (i >= 0) {
      const old = this.cards[i];
      const card: FitsCard = { key: k, value };
      const c = comment ?? old?.comment;
      if (c !== undefined) card.comment = c;
      this.cards[i] = card;
    } else {
      this.cards.push(comment !== undefined ? { key: k, value, comment } : { key: k, value });
    }
  }

  /** Remove every card with this keyword; returns how many were removed. */
  delete(key: string): number {
    const k = normaliseKey(key);
    const before = this.cards.length;
    this.cards = this.cards.filter((c) => c.key !== k);
    return before - this.cards.length;
  }

  /** Append a card as is (duplicates allowed). */
  add(card: FitsCard): void {
    this.cards.push({ ...card, key: normaliseKey(card.key) });
  }

  keys(): string[] {
    return this.cards.map((c) => c.key);
  }

  clone(): FitsHeader {
    return new FitsHeader(this.cards.map((c) => ({ ...c })));
  }
}

// ---------------------------------------------------------------------------
// parsing

interface RawCard {
  key: string;
  /** true when the card has a value indicator (`= ` in columns 9-10, or HIERARCH `=`) */
  hasValue: boolean;
  valueText: string;
}

const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?$/;

/** Parse the text after the value indicator into a value and comment. */
export function parseValueText(text: string): { value: FitsValue; comment?: string; isString: boolean } {
  let i = 0;
  while (i < text.length && text[i] === ' ') i++;
  if (text[i] === "'") {
    let s = '';
    i++;
    let closed = false;
    while (i < text.length) {
      const ch = text[i];
      if (ch === "'") {
        if (text[i + 1] === "'") {
          s += "'";
          i += 2;
          continue;
        }
        closed = true;
        i++;
        break;
      }
      s += ch;
      i++;
    }
    // an unterminated string is tolerated (astropy does too, with a warning)
    void closed;
    const rest = text.slice(i);
    const slash = rest.indexOf('/');
    const out: { value: FitsValue; comment?: string; isString: boolean } = { value: s.replace(/ +$/, ''), isString: true };
    if (slash >= 0) out.comment = rest.slice(slash + 1).trim();
    return out;
  }
  const slash = text.indexOf('/', i);
  const raw = (slash >= 0 ? text.slice(i, slash) : text.slice(i)).trim();
  const out: { value: FitsValue; comment?: string; isString: boolean } = { value: parseScalar(raw), isString: false };
  if (slash >= 0) out.comment = text.slice(slash + 1).trim();
  return out;
}

function parseScalar(raw: string): FitsValue {
  if (raw === '') return null;
  if (raw === 'T') return true;
  if (raw === 'F') return false;
  if (INT_RE.test(raw)) {
    const n = Number(raw);
    if (Number.isSafeInteger(n)) return n;
    return BigInt(raw);
  }
  if (FLOAT_RE.test(raw)) return Number(raw.replace(/[Dd]/, 'E'));
  // complex values "(re, im)" and anything non-standard are kept as their text
  return raw;
}

function splitCard(card: string): RawCard {
  const key8 = card.slice(0, 8).trimEnd();
  if (key8.toUpperCase() === 'HIERARCH') {
    const eq = card.indexOf('=', 8);
    if (eq > 0) {
      return { key: card.slice(8, eq).trim().toUpperCase(), hasValue: true, valueText: card.slice(eq + 1) };
    }
  }
  const key = key8.toUpperCase();
  if (!isCommentaryKey(key) && card.slice(8, 10) === '= ') {
    return { key, hasValue: true, valueText: card.slice(10) };
  }
  return { key, hasValue: false, valueText: card.slice(8) };
}

/**
 * Parse header cards from 80-char card images, stopping at END. Joins
 * long-string CONTINUE cards onto the string they extend.
 * `text` holds whole cards (latin1-decoded bytes).
 */
export function parseHeaderCards(text: string, ctx: { path?: string; hdu?: number } = {}): { cards: FitsCard[]; endFound: boolean } {
  const cards: FitsCard[] = [];
  // index of the last string card whose value ended with '&' (still continuable)
  let continuable = -1;
  for (let off = 0; off + CARD_LENGTH <= text.length; off += CARD_LENGTH) {
    const card = text.slice(off, off + CARD_LENGTH);
    const raw = splitCard(card);
    if (raw.key === 'END' && !raw.hasValue && card.slice(3).trim() === '') {
      return { cards, endFound: true };
    }
    if (raw.key === 'CONTINUE' && !raw.hasValue && continuable >= 0) {
      const prev = cards[continuable];
      const parsed = parseValueText(raw.valueText);
      if (prev !== undefined && parsed.isString && typeof prev.value === 'string') {
        const head = prev.value.endsWith('&') ? prev.value.slice(0, -1) : prev.value;
        const piece = parsed.value as string;
        prev.value = head + piece;
        if (parsed.comment !== undefined && parsed.comment !== '') {
          prev.comment = prev.comment !== undefined && prev.comment !== '' ? `${prev.comment} ${parsed.comment}` : parsed.comment;
        }
        if (!piece.endsWith('&')) continuable = -1;
        continue;
      }
    }
    continuable = -1;
    if (!raw.hasValue) {
      const t = raw.valueText.replace(/ +$/, '');
      cards.push({ key: raw.key, value: t });
      continue;
    }
    let parsed: ReturnType<typeof parseValueText>;
    try {
      parsed = parseValueText(raw.valueText);
    } catch (cause) {
      throw new FitsFormatError(`cannot parse card ${JSON.stringify(card.trimEnd())}`, { ...ctx, cause });
    }
    const out: FitsCard = { key: raw.key, value: parsed.value };
    if (parsed.comment !== undefined && parsed.comment !== '') out.comment = parsed.comment;
    cards.push(out);
    if (parsed.isString && typeof parsed.value === 'string' && parsed.value.endsWith('&')) continuable = cards.length - 1;
  }
  return { cards, endFound: false };
}

// ---------------------------------------------------------------------------
// formatting

const KEY_RE = /^[A-Z0-9_-]{0,8}$/;

export function formatFloat(v: number, key: string): string {
  if (!Number.isFinite(v)) throw new FitsWriteError(`keyword ${key}: value ${v} cannot be written in a FITS header`);
  if (Number.isInteger(v) && Math.abs(v) < 1e16) return `${v.toFixed(1)}`;
  let s = String(v).toUpperCase();
  if (s.includes('E')) {
    let [mant = '', exp = ''] = s.split('E');
    if (!mant.includes('.')) mant += '.0';
    const sign = exp.startsWith('-') ? '-' : '+';
    const digits = exp.replace(/^[+-]/, '').padStart(2, '0');
    s = `${mant}E${sign}${digits}`;
  } else if (!s.includes('.')) {
    s += '.0';
  }
  return s;
}

function formatScalar(value: FitsValue, key: string): string {
  if (value === null) return '';
  if (typeof value === 'boolean') return (value ? 'T' : 'F').padStart(20);
  if (typeof value === 'bigint') return value.toString().padStart(20);
  if (typeof value === 'number') {
    if (Number.isInteger(value) && Number.isSafeInteger(value) && !Object.is(value, -0)) return String(value).padStart(20);
    return formatFloat(value, key).padStart(20);
  }
  return formatStringValue(value);
}

function escapeString(s: string): string {
  return s.replace(/'/g, "''");
}

function formatStringValue(s: string): string {
  // closing quote no earlier than column 20: at least 8 characters inside the quotes
  return `'${escapeString(s).padEnd(8)}'`;
}

function pad80(s: string): string {
  return s.length >= CARD_LENGTH ? s.slice(0, CARD_LENGTH) : s.padEnd(CARD_LENGTH);
}

function checkAscii(s: string, key: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[^\x20-\x7e]/.test(s)) throw new FitsWriteError(`keyword ${key}: non-printable or non-ASCII text ${JSON.stringify(s)}`);
}

/** Split a string into pieces whose escaped length is <= max, never splitting a doubled quote. */
function chunkEscaped(s: string, max: number): string[] {
  const out: string[] = [];
  let cur = '';
  let curLen = 0;
  for (const ch of s) {
    const len = ch === "'" ? 2 : 1;
    if (curLen + len > max) {
      out.push(cur);
      cur = '';
      curLen = 0;
    }
    cur += ch;
    curLen += len;
  }
  out.push(cur);
  return out;
}

/** Format one card as one or more 80-character card images. */
export function formatCard(card: FitsCard): string[] {
  const key = normaliseKey(card.key);
  if (isCommentaryKey(key)) {
    const text = typeof card.value === 'string' ? card.value : card.value === undefined || card.value === null ? (card.comment ?? '') : String(card.value);
    checkAscii(text, key);
    const pieces: string[] = [];
    for (let i = 0; i < text.length; i += 72) pieces.push(text.slice(i, i + 72));
    if (pieces.length === 0) pieces.push('');
    return pieces.map((p) => pad80(key.padEnd(8) + p));
  }
  if (key === 'END') throw new FitsWriteError('END is written automatically; do not pass it as a card');
  const comment = card.comment ?? '';
  checkAscii(comment, key);
  const hierarch = !KEY_RE.test(key);
  if (hierarch && !/^[A-Z0-9_ .-]+$/.test(key)) throw new FitsWriteError(`invalid keyword ${JSON.stringify(card.key)}`);
  const prefix = hierarch ? `HIERARCH ${key} = ` : `${key.padEnd(8)}= `;
  const value = card.value === undefined ? null : card.value;
  if (typeof value === 'string') checkAscii(value, key);
  // HIERARCH cards are free-format: no padding, so long keywords still fit
  const valueText = hierarch ? formatScalar(value, key).trimStart() : formatScalar(value, key);
  let line = prefix + valueText;
  if (comment !== '') line += ` / ${comment}`;
  if (line.length <= CARD_LENGTH || (typeof value !== 'string' && (prefix + valueText).length <= CARD_LENGTH)) {
    // over-long comments are truncated (comments carry no data)
    return [pad80(line)];
  }
  if (typeof value !== 'string') throw new FitsWriteError(`keyword ${key}: card too long`);
  // long string: CONTINUE convention
  const first = CARD_LENGTH - prefix.length - 3; // quotes and '&'
  if (first < 1) throw new FitsWriteError(`keyword ${key}: too long for a HIERARCH card with a long string`);
  const out: string[] = [];
  const firstPieces = chunkEscaped(value, first);
  const head = firstPieces[0] ?? '';
  const tail = value.slice(head.length);
  const rest = tail.length > 0 ? chunkEscaped(tail, 67) : [];
  const all = [head, ...rest];
  const commentPieces: string[] = [];
  for (let i = 0; i < comment.length; i += 64) commentPieces.push(comment.slice(i, i + 64));
  all.forEach((piece, idx) => {
    const last = idx === all.length - 1;
    const body = `'${escapeString(piece)}${last && commentPieces.length === 0 ? '' : '&'}'`;
    const pre = idx === 0 ? prefix : 'CONTINUE  ';
    let l = pre + body;
    if (last && commentPieces.length === 1 && (l + ` / ${commentPieces[0]}`).length <= CARD_LENGTH) {
      l += ` / ${commentPieces[0]}`;
      commentPieces.length = 0;
      l = l.replace(/&' \//, "' /");
    }
    out.push(pad80(l));
  });
  if (commentPieces.length > 0) {
    commentPieces.forEach((cp, i) => {
      const last = i === commentPieces.length - 1;
      out.push(pad80(`CONTINUE  '${last ? '' : '&'}' / ${cp}`));
    });
  }
  return out;
}

/** Encode cards (END appended) as a whole number of 2880-byte blocks, latin1/ASCII. */
export function encodeHeader(cards: FitsCard[]): Buffer {
  const lines: string[] = [];
  for (const c of cards) lines.push(...formatCard(c));
  lines.push(pad80('END'));
  const nBlocks = Math.ceil((lines.length * CARD_LENGTH) / BLOCK_LENGTH);
  const text = lines.join('').padEnd(nBlocks * BLOCK_LENGTH, ' ');
  return Buffer.from(text, 'latin1');
}
