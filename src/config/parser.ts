// Recursive-descent parser of the config language into a syntax tree, with `include` expanded in
// place. It knows the grammar only, not the options: build.ts validates against the schema. On a
// syntax error it records it, skips to the next line that starts a new item, and goes on. Reads
// included files synchronously (config load happens before anything else runs).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ConfigError, SourceLocation } from './errors.js';
import { at } from './errors.js';
import { tokenize, type Token } from './lexer.js';

export interface Scalar { kind: 'scalar'; text: string; quoted: boolean; where: SourceLocation }
export interface ListValue { kind: 'list'; items: Scalar[]; where: SourceLocation }
export interface DictValue { kind: 'dict'; entries: { key: string; where: SourceLocation; value: Scalar }[]; where: SourceLocation }
export type Value = Scalar | ListValue | DictValue;

export interface OptionNode { type: 'option'; keyword: string; where: SourceLocation; value: Value }
export interface StanzaNode { type: 'stanza'; keyword: string; where: SourceLocation; name?: Scalar; body: Node[]; end: SourceLocation }
export type Node = OptionNode | StanzaNode;

export interface ParseContext {
  errors: ConfigError[];
  /** Absolute paths of every file read, in order. */
  files: string[];
  /** Paths in error messages are shown relative to this directory when below it. */
  cwd: string;
  /** Absolute paths of the files being parsed, outermost first: an include cycle is one of these again. */
  stack: string[];
}

const describe = (t: Token): string => (t.kind === 'eof' ? 'end of file' : t.kind === 'string' ? `"${t.text}"` : `"${t.text}"`);
const loc = (t: Token | SourceLocation): SourceLocation => ({ file: t.file, line: t.line, column: t.column });

export function displayName(abs: string, cwd: string): string {
  const rel = path.relative(cwd, abs);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
}

/** Parses one file's text; `dir` is where its includes are resolved. */
export function parseText(text: string, file: string, dir: string, ctx: ParseContext): Node[] {
  return new Parser(tokenize(text, file, ctx.errors), dir, ctx).parseFile();
}

/** Reads and parses one file by absolute path; errors (unreadable file) are reported at `from`. */
export function parseFile(abs: string, from: SourceLocation | null, ctx: ParseContext): Node[] {
  const name = displayName(abs, ctx.cwd);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    ctx.errors.push(from ? at(from, `cannot read included file "${name}": ${code}`) : { file: name, line: 1, column: 1, message: `cannot read config file: ${code}` });
    return [];
  }
  ctx.files.push(abs);
  ctx.stack.push(abs);
  try {
    return parseText(text, name, path.dirname(abs), ctx);
  } finally {
    ctx.stack.pop();
  }
}

class Parser {
  private pos = 0;
  constructor(private readonly toks: Token[], private readonly dir: string, private readonly ctx: ParseContext) {}

  private peek(k = 0): Token { return this.toks[Math.min(this.pos + k, this.toks.length - 1)]!; }
  private next(): Token { const t = this.peek(); if (t.kind !== 'eof') this.pos++; return t; }
  private error(where: SourceLocation, message: string): void { this.ctx.errors.push(at(where, message)); }

  parseFile(): Node[] { return this.parseBody(null); }

  /** Items until the "}" closing `open` (consumed), or until end of file at top level. */
  private parseBody(open: { keyword: string; name?: Scalar; where: SourceLocation } | null): Node[] {
    const nodes: Node[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === 'eof') {
        if (open) {
          const what = open.name ? `${open.keyword} "${open.name.text}"` : open.keyword;
          this.error(loc(t), `expected "}" to close ${what} opened at ${open.where.line}:${open.where.column}`);
        }
        return nodes;
      }
      if (t.kind === '}') {
        this.next();
        if (open) return nodes;
        this.error(loc(t), 'unexpected "}" with no stanza to close');
        continue;
      }
      this.parseItem(nodes);
    }
  }

  private parseItem(out: Node[]): void {
    const t = this.next();
    if (t.kind !== 'word') {
      this.error(loc(t), `expected an option or stanza name, got ${describe(t)}`);
      this.sync(t.line);
      return;
    }
    const after = this.peek();
    if (t.text.toLowerCase() === 'include' && (after.kind === 'string' || after.kind === 'word') && this.peek(1).kind !== '{') {
      this.next();
      out.push(...this.include(after));
      return;
    }
    if (after.kind === '=') {
      this.next();
      const value = this.parseValue(t);
      if (value) out.push({ type: 'option', keyword: t.text, where: loc(t), value });
      else this.sync(t.line);
      return;
    }
    if (after.kind === '{') {
      this.next();
      const body = this.parseBody({ keyword: t.text, where: loc(t) });
      out.push({ type: 'stanza', keyword: t.text, where: loc(t), body, end: loc(this.toks[this.pos - 1] ?? t) });
      return;
    }
    if ((after.kind === 'string' || after.kind === 'word') && this.peek(1).kind === '{') {
      this.next();
      this.next();
      const name: Scalar = { kind: 'scalar', text: after.text, quoted: after.kind === 'string', where: loc(after) };
      const body = this.parseBody({ keyword: t.text, name, where: loc(t) });
      out.push({ type: 'stanza', keyword: t.text, where: loc(t), name, body, end: loc(this.toks[this.pos - 1] ?? t) });
      return;
    }
    // Point at the offending token when it is on the same line; otherwise just past the keyword.
    const where = after.line === t.line && after.kind !== 'eof' ? loc(after) : { file: t.file, line: t.line, column: t.column + t.text.length };
    this.error(where, `expected "=" or "{" after "${t.text}"`);
    this.sync(t.line);
  }

  /** Skips to the next item: a word on a later line, or the "}" closing the current block. */
  private sync(errLine: number): void {
    let depth = 0;
    for (;;) {
      const t = this.peek();
      if (t.kind === 'eof') return;
      if (depth === 0 && t.kind === '}') return;
      if (depth === 0 && t.kind === 'word' && t.line > errLine) return;
      if (t.kind === '{') depth++;
      if (t.kind === '}') depth--;
      this.next();
    }
  }

  private parseValue(key: Token): Value | null {
    const t = this.peek();
    if (t.kind === 'word' || t.kind === 'string') {
      this.next();
      return { kind: 'scalar', text: t.text, quoted: t.kind === 'string', where: loc(t) };
    }
    if (t.kind === '(') return this.parseList();
    if (t.kind === '[') return this.parseDict();
    this.error(loc(t), `expected a value after "${key.text} =", got ${describe(t)}`);
    return null;
  }

  // A word followed by "=" or "{" starts the next item: an unclosed list or dictionary ends there,
  // so a missing ")" does not swallow the rest of the file.
  private startsItem(): boolean {
    const t = this.peek();
    const n = this.peek(1).kind;
    return t.kind === 'word' && (n === '=' || n === '{');
  }

  private parseList(): ListValue {
    const open = this.next();
    const items: Scalar[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === ')') { this.next(); break; }
      if ((t.kind === 'word' || t.kind === 'string') && !this.startsItem()) {
        this.next();
        items.push({ kind: 'scalar', text: t.text, quoted: t.kind === 'string', where: loc(t) });
        continue;
      }
      if (t.kind === '(' || t.kind === '[') {
        this.error(loc(t), 'expected a string or word in list; lists cannot be nested');
        this.next();
        continue;
      }
      this.error(loc(t), `expected ")" to close list opened at ${open.line}:${open.column}, got ${describe(t)}`);
      break;
    }
    return { kind: 'list', items, where: loc(open) };
  }

  private parseDict(): DictValue {
    const open = this.next();
    const entries: DictValue['entries'] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === ']') { this.next(); break; }
      if (t.kind === 'word' || t.kind === 'string') {
        // A word followed by "{" is the next stanza: the dictionary was not closed.
        if (this.peek(1).kind === '{') { this.error(loc(t), `expected "]" to close dictionary opened at ${open.line}:${open.column}, got ${describe(t)}`); break; }
        this.next();
        if (this.peek().kind !== '=') {
          this.error(loc(this.peek()), `expected "=" after dictionary key "${t.text}", got ${describe(this.peek())}`);
          continue;
        }
        this.next();
        const v = this.peek();
        if (v.kind !== 'word' && v.kind !== 'string') {
          this.error(loc(v), `expected a string value for dictionary key "${t.text}", got ${describe(v)}`);
          if (v.kind === ']' || v.kind === 'eof' || v.kind === '}' || v.kind === '{') continue;
          this.next();
          continue;
        }
        this.next();
        entries.push({ key: t.text, where: loc(t), value: { kind: 'scalar', text: v.text, quoted: v.kind === 'string', where: loc(v) } });
        continue;
      }
      if (t.kind === 'eof' || t.kind === '}' || t.kind === '{') {
        this.error(loc(t), `expected "]" to close dictionary opened at ${open.line}:${open.column}, got ${describe(t)}`);
        break;
      }
      this.error(loc(t), `expected a dictionary key, got ${describe(t)}`);
      this.next();
    }
    return { kind: 'dict', entries, where: loc(open) };
  }

  /** `include "file"` or `include "dir"` (its *.conf files, in alphabetical order). */
  private include(arg: Token): Node[] {
    const where = loc(arg);
    const target = path.resolve(this.dir, arg.text);
    let isDir: boolean;
    try {
      isDir = statSync(target).isDirectory();
    } catch (e) {
      this.error(where, `cannot read included file "${displayName(target, this.ctx.cwd)}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      return [];
    }
    let files: string[];
    if (isDir) {
      // Byte order, not locale order: the same directory must load the same way on every node.
      files = readdirSync(target, { withFileTypes: true })
        .filter((d) => d.name.endsWith('.conf') && !d.isDirectory())
        .map((d) => d.name)
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
        .map((f) => path.join(target, f));
    } else {
      files = [target];
    }
    const out: Node[] = [];
    for (const f of files) {
      const i = this.ctx.stack.indexOf(f);
      if (i >= 0) {
        const chain = [...this.ctx.stack.slice(i), f].map((p) => displayName(p, this.ctx.cwd)).join(' -> ');
        this.error(where, `include cycle: ${chain}`);
        continue;
      }
      out.push(...parseFile(f, where, this.ctx));
    }
    return out;
  }
}
