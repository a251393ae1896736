// A ChangeSet as one console argument (`config propose CHANGESET`: base64 of JSON, file contents
// in base64), so the CLI can send a commit through the control socket like any other command.
// Pure; any thread.
import { ErrorCode, VipError } from '../../errors.js';
import type { ChangeSet, ProposeResult } from './types.js';

interface WireChangeSet {
  base: string;
  message: string;
  author: string;
  time: number;
  files: { path: string; content: string | null }[];
}

export function encodeChangeSet(cs: ChangeSet): string {
  const w: WireChangeSet = {
    base: cs.base, message: cs.message, author: cs.author, time: cs.time,
    files: cs.files.map((f) => ({ path: f.path, content: f.content === null ? null : f.content.toString('base64') })),
  };
  return Buffer.from(JSON.stringify(w), 'utf8').toString('base64');
}

export function decodeChangeSet(text: string): ChangeSet {
  let w: WireChangeSet;
  try {
    w = JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as WireChangeSet;
  } catch {
    throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, 'config propose: the change set is not base64 of JSON');
  }
  const str = (v: unknown): v is string => typeof v === 'string';
  const ok = w !== null && typeof w === 'object' && str(w.base) && str(w.message) && str(w.author) && Number.isInteger(w.time) && Array.isArray(w.files)
    && w.files.every((f) => f !== null && typeof f === 'object' && str(f.path) && (f.content === null || str(f.content)));
  if (!ok) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, 'config propose: the change set lacks base, message, author, time or files');
  return {
    base: w.base, message: w.message, author: w.author, time: w.time,
    files: w.files.map((f) => ({ path: f.path, content: f.content === null ? null : Buffer.from(f.content, 'base64') })),
  };
}

/** `config propose`'s answer: the result and where the node's repository is (for `git pull`). */
export type ProposeAnswer = ProposeResult & { readonly repository: string };

/** Formats a refusal as the committer reads it: each rejecting node, then its errors. */
export function formatRefusal(r: Extract<ProposeResult, { ok: false }>): string {
  const lines = [r.message];
  for (const n of r.rejected) {
    lines.push(`${n.node} rejected it:`);
    for (const e of n.errors) lines.push(`  ${e}`);
  }
  return lines.join('\n') + '\n';
}
