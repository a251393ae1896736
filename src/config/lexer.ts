// Tokenizer for the ecelerity.conf-style config language: words, quoted strings, punctuation, with
// `#` and `/* */` comments skipped. It never throws: a bad string or comment becomes an error in the
// list and lexing goes on, so one run reports every mistake. Pure, synchronous; main thread.

import type { ConfigError, SourceLocation } from './errors.js';

export type TokenKind = 'word' | 'string' | '=' | '{' | '}' | '(' | ')' | '[' | ']' | 'eof';

export interface Token extends SourceLocation {
  kind: TokenKind;
  /** Word text, or a string's value with escapes resolved. */
  text: string;
}

// A bare word runs until whitespace or punctuation; ":" "/" "." "-" are word characters so that
// 192.168.0.1:25, 10M, ./var/spool and 198.51.100.0/24 need no quotes.
const PUNCT = new Set(['=', '{', '}', '(', ')', '[', ']']);
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', n: '\n', t: '\t' };

export function tokenize(text: string, file: string, errors: ConfigError[]): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let col = 1;
  const n = text.length;
  const err = (l: number, c: number, message: string): void => { errors.push({ file, line: l, column: c, message }); };
  const advance = (): void => {
    if (text[i] === '\n') { line++; col = 1; } else { col++; }
    i++;
  };

  while (i < n) {
    const ch = text[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n' || ch === '\f' || ch === '\v') { advance(); continue; }
    if (ch === '#') { while (i < n && text[i] !== '\n') advance(); continue; }
    if (ch === '/' && text[i + 1] === '*') {
      const sl = line, sc = col;
      advance(); advance();
      while (i < n && !(text[i] === '*' && text[i + 1] === '/')) advance();
      if (i >= n) { err(sl, sc, 'unterminated comment: "/*" without "*/"'); break; }
      advance(); advance();
      continue;
    }
    const sl = line, sc = col;
    if (PUNCT.has(ch)) { tokens.push({ kind: ch as TokenKind, text: ch, file, line: sl, column: sc }); advance(); continue; }
    if (ch === '"') {
      advance();
      let value = '';
      let closed = false;
      // A string ends at its closing quote; a raw newline ends it with an error, so a missing quote
      // costs one line, not the rest of the file.
      while (i < n && text[i] !== '\n') {
        const c = text[i]!;
        if (c === '"') { advance(); closed = true; break; }
        if (c === '\\') {
          const el = line, ec = col;
          advance();
          const e = text[i];
          if (e === undefined || e === '\n') break;
          const rep = ESCAPES[e];
          if (rep === undefined) err(el, ec, `unknown escape "\\${e}" in string; expected \\" \\\\ \\n or \\t`);
          else value += rep;
          advance();
          continue;
        }
        value += c;
        advance();
      }
      if (!closed) err(sl, sc, 'unterminated string: missing closing \'"\' before end of line');
      tokens.push({ kind: 'string', text: value, file, line: sl, column: sc });
      continue;
    }
    let word = '';
    while (i < n) {
      const c = text[i]!;
      if (c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\f' || c === '\v' || c === '"' || c === '#' || PUNCT.has(c)) break;
      if (c === '/' && text[i + 1] === '*') break;
      word += c;
      advance();
    }
    tokens.push({ kind: 'word', text: word, file, line: sl, column: sc });
  }
  tokens.push({ kind: 'eof', text: '', file, line, column: col });
  return tokens;
}
