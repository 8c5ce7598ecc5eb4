import type { JsonObject, JsonValue } from './types.js';

/**
 * A fast reader for the plain YAML that Kubernetes manifests are almost always written in: block maps and
 * sequences, one-line flow collections, plain and one-line quoted scalars, comments, `---` between documents.
 * It gives exactly what the `yaml` package gives for that subset (the core schema's values, the same start offset
 * for every node) and nothing for anything else: anchors, tags, block and multi-line scalars, directives, tabs,
 * CRLF, duplicate or non-string keys, any syntax error. The caller then reads the whole file with `yaml`, which
 * also words every error. test/manifests/fast-yaml.test.ts checks it against `yaml` node by node.
 */

/** One document's root map: its value and, per node in preorder, [start offset, subtree size, LEAF|MAP|SEQ] and the map key. */
export interface FastDocument {
  value: JsonObject;
  nodes: number[];
  keys: unknown[];
}

export const LEAF = 0;
export const MAP = 1;
export const SEQ = 2;
/** The key of a sequence item or of a map entry whose key is not a scalar: equal to no path segment. */
export const NO_KEY: unique symbol = Symbol('no key');

class Unsupported extends Error {}
const unsupported = (): never => {
  throw new Unsupported();
};

interface Line {
  /** Column of the first character of the content (a virtual line inside a `- ` item starts after the dash). */
  indent: number;
  /** Offset of the first content character and of the line end (before `\n`). */
  start: number;
  end: number;
}

/** The documents of one file, or undefined when anything in it is outside the subset. */
export function parseFastYaml(text: string): FastDocument[] | undefined {
  if (text.includes('\t') || text.includes('\r') || text.includes('{{') || text.charCodeAt(0) === 0xfeff) return undefined;
  try {
    return new Reader(text).documents();
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
}

const PLAIN_KEY = /[A-Za-z0-9_/][A-Za-z0-9_./-]*/y;
const NULL = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT_OCT = /^0o[0-7]+$/;
const INT = /^[-+]?[0-9]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

/** A plain scalar as the YAML 1.2 core schema resolves it (yaml's tag order: null, bool, int, float). */
function resolvePlain(s: string): JsonValue {
  const c = s.charCodeAt(0);
  // Fast exit: a plain scalar starting with a letter other than n/N/t/T/f/F is a string.
  if (((c >= 97 && c <= 122) || (c >= 65 && c <= 90)) && !'nNtTfF'.includes(s[0] as string)) return s;
  if (NULL.test(s)) return null;
  if (BOOL.test(s)) return c === 116 || c === 84;
  if (INT_OCT.test(s)) return parseInt(s.substring(2), 8);
  if (INT.test(s)) return parseInt(s, 10);
  if (INT_HEX.test(s)) return parseInt(s.substring(2), 16);
  if (FLOAT_NAN.test(s)) return unsupported();
  if (FLOAT_EXP.test(s) || FLOAT.test(s)) return parseFloat(s);
  return s;
}

class Reader {
  private readonly lines: Line[] = [];
  private i = 0;
  private nodes: number[] = [];
  private keys: unknown[] = [];

  constructor(private readonly text: string) {}

  documents(): FastDocument[] {
    const { text } = this;
    const docs: FastDocument[] = [];
    let pos = 0;
    let docLines: Line[] = [];
    const flush = (): void => {
      if (docLines.length > 0) docs.push(this.document(docLines));
      docLines = [];
    };
    while (pos <= text.length) {
      let end = text.indexOf('\n', pos);
      if (end < 0) end = text.length;
      let start = pos;
      while (start < end && text.charCodeAt(start) === 32) start++;
      if (start < end && text.charCodeAt(start) !== 35 /* # */) {
        if (start === pos && (text.startsWith('---', pos) || text.startsWith('...', pos) || text.charCodeAt(pos) === 37 /* % */)) {
          if (end - pos !== 3 || text[pos] !== '-') unsupported();
          flush();
        } else {
          docLines.push({ indent: start - pos, start, end });
        }
      }
      pos = end + 1;
    }
    flush();
    return docs;
  }

  private document(lines: Line[]): FastDocument {
    this.lines.length = 0;
    this.lines.push(...lines);
    this.i = 0;
    this.nodes = [];
    this.keys = [];
    const first = lines[0] as Line;
    if (this.isSeqItem(first)) unsupported();
    const value = this.blockMap(first.indent, first.start, NO_KEY);
    if (this.i < this.lines.length) unsupported();
    return { value, nodes: this.nodes, keys: this.keys };
  }

  private open(offset: number, key: unknown, type: number): number {
    const at = this.keys.length;
    this.keys.push(key);
    this.nodes.push(offset, 1, type);
    return at;
  }

  private close(at: number): void {
    this.nodes[3 * at + 1] = this.keys.length - at;
  }

  private isSeqItem(line: Line): boolean {
    return this.text.charCodeAt(line.start) === 45 /* - */ && (line.start + 1 === line.end || this.text.charCodeAt(line.start + 1) === 32);
  }

  private current(): Line | undefined {
    return this.lines[this.i];
  }

  private blockMap(indent: number, offset: number, key: unknown): JsonObject {
    const at = this.open(offset, key, MAP);
    const out: JsonObject = {};
    for (let line = this.current(); line && line.indent === indent; line = this.current()) {
      if (this.isSeqItem(line)) unsupported();
      const { text } = this;
      let k: string;
      let p: number;
      const c = text.charCodeAt(line.start);
      if (c === 34 || c === 39) {
        [k, p] = this.quoted(line.start, line.end);
      } else {
        PLAIN_KEY.lastIndex = line.start;
        if (!PLAIN_KEY.test(text)) unsupported();
        p = PLAIN_KEY.lastIndex;
        k = text.slice(line.start, p);
        if (typeof resolvePlain(k) !== 'string') unsupported();
      }
      if (text.charCodeAt(p) !== 58 /* : */ || (p + 1 < line.end && text.charCodeAt(p + 1) !== 32)) unsupported();
      if (Object.prototype.hasOwnProperty.call(out, k) || k === '__proto__' || k === '<<') unsupported();
      this.i++;
      const rest = this.skipSpaces(p + 1, line.end);
      if (rest === line.end || text.charCodeAt(rest) === 35) {
        out[k] = this.blockValue(indent, line.start, k);
      } else {
        out[k] = this.inlineValue(rest, line.end, line.start, k, true);
        this.noDeeperLine(indent);
      }
    }
    this.close(at);
    return out;
  }

  /** The value of `key:` with nothing after it: a deeper block, a `- ` sequence at the same indent, or null. */
  private blockValue(indent: number, keyOffset: number, key: unknown): JsonValue {
    const next = this.current();
    if (next && next.indent > indent) {
      return this.isSeqItem(next) ? this.blockSeq(next.indent, keyOffset, key) : this.blockMap(next.indent, keyOffset, key);
    }
    if (next && next.indent === indent && this.isSeqItem(next)) return this.blockSeq(indent, keyOffset, key);
    this.close(this.open(keyOffset, key, LEAF));
    return null;
  }

  private blockSeq(indent: number, offset: number, key: unknown): JsonValue[] {
    const at = this.open(offset, key, SEQ);
    const out: JsonValue[] = [];
    const { text } = this;
    for (let line = this.current(); line && line.indent === indent && this.isSeqItem(line); line = this.current()) {
      const content = this.skipSpaces(line.start + 1, line.end);
      if (content === line.end || text.charCodeAt(content) === 35) unsupported(); // `-` alone: a null or a deeper block
      if (this.isMapEntry(content, line.end)) {
        // `- key: value`: a map whose entries sit at the column of its first key; this line becomes its first line.
        line.indent = indent + (content - line.start);
        line.start = content;
        out.push(this.blockMap(line.indent, content, NO_KEY));
        continue;
      }
      this.i++;
      out.push(this.inlineValue(content, line.end, content, NO_KEY, true));
      this.noDeeperLine(indent);
    }
    this.close(at);
    return out;
  }

  /** A line deeper than a complete scalar would continue it (a multi-line scalar) or be an error: not this reader's. */
  private noDeeperLine(indent: number): void {
    const next = this.current();
    if (next && next.indent > indent) unsupported();
  }

  private isMapEntry(p: number, end: number): boolean {
    const { text } = this;
    const c = text.charCodeAt(p);
    if (c === 34 || c === 39) {
      const close = text.indexOf(c === 34 ? '"' : "'", p + 1);
      return close > 0 && close < end && text.charCodeAt(close + 1) === 58;
    }
    PLAIN_KEY.lastIndex = p;
    if (!PLAIN_KEY.test(text)) return false;
    const q = PLAIN_KEY.lastIndex;
    return text.charCodeAt(q) === 58 && (q + 1 === end || text.charCodeAt(q + 1) === 32);
  }

  private skipSpaces(p: number, end: number): number {
    while (p < end && this.text.charCodeAt(p) === 32) p++;
    return p;
  }

  /** A scalar or flow collection from `p` that must end the line (a comment aside). */
  private inlineValue(p: number, end: number, offset: number, key: unknown, block: boolean): JsonValue {
    const [value, q] = this.flowNode(p, end, offset, key, block);
    const after = this.skipSpaces(q, end);
    if (after < end && !(this.text.charCodeAt(after) === 35 && this.text.charCodeAt(after - 1) === 32)) unsupported();
    return value;
  }

  /** One node in flow or block-inline position; returns the value and the offset after it. */
  private flowNode(p: number, end: number, offset: number, key: unknown, block: boolean): [JsonValue, number] {
    const { text } = this;
    const c = text.charCodeAt(p);
    if (c === 123 /* { */) return this.flowMap(p, end, offset, key);
    if (c === 91 /* [ */) return this.flowSeq(p, end, offset, key);
    const at = this.open(offset, key, LEAF);
    this.close(at);
    if (c === 34 || c === 39) return this.quoted(p, end);
    // Plain scalar: no indicator first (a `-` only when a non-space follows), no `: ` or ` #` inside.
    if ('?:,]}#&*!|>%@`'.includes(text[p] as string)) unsupported();
    if (c === 45 && (p + 1 >= end || text.charCodeAt(p + 1) === 32 || (!block && ',[]{}'.includes(text[p + 1] as string)))) unsupported();
    let q = p;
    if (block) {
      while (q < end) {
        const ch = text.charCodeAt(q);
        if (ch === 58 && (q + 1 === end || text.charCodeAt(q + 1) === 32)) unsupported();
        if (ch === 35 && text.charCodeAt(q - 1) === 32) break;
        q++;
      }
    } else {
      while (q < end) {
        const ch = text.charCodeAt(q);
        if (ch === 44 || ch === 93 || ch === 125) break; // , ] }
        if (ch === 58 || ch === 35 || ch === 91 || ch === 123) unsupported(); // : # [ { inside a flow scalar
        q++;
      }
    }
    let e = q;
    while (e > p && text.charCodeAt(e - 1) === 32) e--;
    return [resolvePlain(text.slice(p, e)), q];
  }

  private flowMap(p: number, end: number, offset: number, key: unknown): [JsonObject, number] {
    const { text } = this;
    const at = this.open(offset, key, MAP);
    const out: JsonObject = {};
    let q = this.skipSpaces(p + 1, end);
    if (text.charCodeAt(q) === 125) {
      this.close(at);
      return [out, q + 1];
    }
    for (;;) {
      const keyStart = q;
      let k: string;
      const c = text.charCodeAt(q);
      if (c === 34 || c === 39) {
        [k, q] = this.quoted(q, end);
      } else {
        PLAIN_KEY.lastIndex = q;
        if (!PLAIN_KEY.test(text)) unsupported();
        q = PLAIN_KEY.lastIndex;
        k = text.slice(keyStart, q);
        if (typeof resolvePlain(k) !== 'string') unsupported();
      }
      if (text.charCodeAt(q) !== 58 || text.charCodeAt(q + 1) !== 32) unsupported();
      if (Object.prototype.hasOwnProperty.call(out, k) || k === '__proto__' || k === '<<') unsupported();
      q = this.skipSpaces(q + 1, end);
      if (q >= end || ',}'.includes(text[q] as string)) unsupported(); // an empty value
      const [value, r] = this.flowNode(q, end, keyStart, k, false);
      out[k] = value;
      q = this.skipSpaces(r, end);
      const sep = text.charCodeAt(q);
      if (sep === 125) break;
      if (sep !== 44) unsupported();
      q = this.skipSpaces(q + 1, end);
      if (q >= end || text.charCodeAt(q) === 125) unsupported(); // a trailing comma, or the map goes on over lines
    }
    this.close(at);
    return [out, q + 1];
  }

  private flowSeq(p: number, end: number, offset: number, key: unknown): [JsonValue[], number] {
    const { text } = this;
    const at = this.open(offset, key, SEQ);
    const out: JsonValue[] = [];
    let q = this.skipSpaces(p + 1, end);
    if (text.charCodeAt(q) === 93) {
      this.close(at);
      return [out, q + 1];
    }
    for (;;) {
      if (q >= end || ',]'.includes(text[q] as string)) unsupported();
      const [value, r] = this.flowNode(q, end, q, NO_KEY, false);
      out.push(value);
      q = this.skipSpaces(r, end);
      const sep = text.charCodeAt(q);
      if (sep === 93) break;
      if (sep !== 44) unsupported();
      q = this.skipSpaces(q + 1, end);
      if (q >= end || text.charCodeAt(q) === 93) unsupported();
    }
    this.close(at);
    return [out, q + 1];
  }

  /** A one-line quoted scalar: double-quoted with the common escapes, or single-quoted (`''` is a quote). */
  private quoted(p: number, end: number): [string, number] {
    const { text } = this;
    const double = text.charCodeAt(p) === 34;
    let out = '';
    let q = p + 1;
    let chunk = q;
    for (;;) {
      if (q >= end) unsupported();
      const c = text.charCodeAt(q);
      let escaped: string | undefined;
      if (double && c === 34) break;
      if (!double && c === 39) {
        if (text.charCodeAt(q + 1) !== 39) break;
        escaped = "'";
      } else if (double && c === 92) {
        const e = text[q + 1];
        escaped = e === '"' ? '"' : e === '\\' ? '\\' : e === '/' ? '/' : e === 'n' ? '\n' : e === 't' ? '\t' : unsupported();
      } else {
        q++;
        continue;
      }
      out += text.slice(chunk, q) + escaped;
      q += 2;
      chunk = q;
    }
    return [out + text.slice(chunk, q), q + 1];
  }
}
