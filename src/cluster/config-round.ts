// The config group's decision (issue 16), pure: fed the agreed events (views, STATE, PROPOSE, VOTE,
// ABORT) in corosync's order, every member computes the same outcome without a round trip per
// message: one proposal at a time, refused without quorum, on a stale base, by a voter's errors or
// its leaving, or by the proposer's abort; committed when every voter said yes; and who is behind.
// Main thread; no I/O (config-group.ts does the sends, the checks and the commits).

import type { ChangeSet } from '../config/repo/types.js';
import type { StateBody } from './config-wire.js';

/** How a proposal ended, the same on every member. */
export type RoundEnd =
  | { readonly id: string; readonly proposer: string; readonly ok: true; readonly cs: ChangeSet; readonly voters: readonly string[]; readonly height: number }
  | { readonly id: string; readonly proposer: string; readonly ok: false; readonly message: string; readonly rejected: readonly { readonly node: string; readonly errors: readonly string[] }[] };

/** A PROPOSE delivered: opened (the voters must check it and vote) or refused at once. */
export type ProposeOutcome = { readonly open: true; readonly voters: readonly string[] } | { readonly open: false; readonly end: RoundEnd };

/** What the members of the view agree on, from their STATE messages of this view. */
export interface Agreed {
  /** Every member has said its state in this view. */
  readonly complete: boolean;
  /** Complete, and every member says its partition is quorate. */
  readonly quorate: boolean;
  /** The head of the highest history among quorate members ('' none), and its height. */
  readonly head: string;
  readonly height: number;
}

interface Open {
  readonly id: string;
  readonly proposer: string;
  readonly cs: ChangeSet;
  /** memberKey -> node name, of the members that must vote. */
  readonly voters: Map<string, string>;
  readonly votes: Map<string, { ok: boolean; errors: readonly string[] }>;
}

/** Decided and committed: waits for each voter's next STATE (its new head) before the next proposal. */
interface Committing {
  readonly id: string;
  readonly waiting: Set<string>;
}

/** The proposal's id: the proposer's member key and its sequence number. */
export const proposalId = (from: string, seq: number): string => `${from}#${seq}`;

export class ConfigRound {
  private members: string[] = [];
  /** Each member's latest STATE in this view (a view change forgets them: every member says it again). */
  private readonly states = new Map<string, StateBody>();
  private open: Open | null = null;
  private committing: Committing | null = null;

  /** A new view (agreed). A member joining ends an open proposal (it did not see the PROPOSE, so it
   *  could not agree on what is open); a voter leaving before its vote ends it too. */
  view(members: readonly string[], joined: readonly string[], left: readonly { key: string; why: string }[]): RoundEnd | null {
    this.members = [...members];
    const names = new Map([...this.states].map(([k, s]) => [k, s.node]));
    this.states.clear();
    this.committing = null;
    const o = this.open;
    if (o === null) return null;
    const gone = left.filter((l) => o.voters.has(l.key) && !o.votes.has(l.key));
    if (gone.length > 0) {
      const who = gone.map((l) => `${o.voters.get(l.key)} ${l.why} before it voted`).join('; ');
      return this.end(o, `refused: ${who}; nothing was committed`);
    }
    if (joined.length > 0) {
      const who = joined.map((k) => names.get(k) ?? `member ${k}`).join(', ');
      return this.end(o, `refused: the membership changed while it was decided (${who} joined); nothing was committed, propose it again`);
    }
    return null;
  }

  /** A member's STATE (agreed). */
  state(key: string, s: StateBody): void {
    if (!this.members.includes(key)) return;
    this.states.set(key, s);
    if (this.committing !== null) {
      this.committing.waiting.delete(key);
      if (this.committing.waiting.size === 0) this.committing = null;
    }
  }

  /** What the view agrees on now. */
  agreed(): Agreed {
    const complete = this.members.length > 0 && this.members.every((k) => this.states.has(k));
    let head = '';
    let height = 0;
    let anyQuorate = false;
    for (const s of this.states.values()) {
      if (!s.quorate) continue;
      anyQuorate = true;
      if (s.height > height) ({ head, height } = s);
    }
    return { complete, quorate: complete && anyQuorate && [...this.states.values()].every((s) => s.quorate), head, height };
  }

  /** The members of the view (memberKey), in the view's order. */
  memberKeys(): readonly string[] {
    return this.members;
  }

  /** A member's latest STATE of this view. */
  stateOf(key: string): StateBody | undefined {
    return this.states.get(key);
  }

  /** Every member's latest STATE of this view, in node-name order. */
  allStates(): StateBody[] {
    return [...this.states.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }

  /** Whether a proposal is open or its commits are still being announced. */
  get busy(): boolean {
    return this.open !== null || this.committing !== null;
  }

  /** A PROPOSE (agreed) from member `from`. */
  propose(from: string, id: string, cs: ChangeSet): ProposeOutcome {
    const refuse = (message: string): ProposeOutcome => ({ open: false, end: { id, proposer: from, ok: false, message, rejected: [] } });
    if (!this.members.includes(from)) return refuse('refused: the proposer is not a member of the view');
    if (this.busy) return refuse('refused: another change is being decided; try again in a moment');
    const a = this.agreed();
    if (!a.complete) return refuse('refused: the cluster view is still forming (not every member has said its state); try again in a moment');
    if (!a.quorate) return refuse('refused: this partition has no quorum; a commit is accepted only where a majority of the cluster is (every node refuses it here)');
    if (cs.base !== a.head) {
      return refuse(`refused: stale: the change was made against ${cs.base === '' ? 'an empty repository' : cs.base.slice(0, 12)}, the cluster's head is ${a.head === '' ? 'empty' : a.head.slice(0, 12)}; update and make it again`);
    }
    // Members behind the agreed head are catching up: they take this revision by bundle later.
    const voters = new Map<string, string>();
    for (const k of this.members) {
      const s = this.states.get(k)!;
      if (s.head === a.head) voters.set(k, s.node);
    }
    if (!voters.has(from)) return refuse('refused: the proposing node is behind the cluster and still catching up');
    this.open = { id, proposer: from, cs, voters, votes: new Map() };
    return { open: true, voters: [...voters.keys()] };
  }

  /** A VOTE (agreed); the end when it was the last one. */
  vote(from: string, id: string, ok: boolean, errors: readonly string[]): RoundEnd | null {
    const o = this.open;
    if (o === null || o.id !== id || !o.voters.has(from) || o.votes.has(from)) return null;
    o.votes.set(from, { ok, errors });
    if (o.votes.size < o.voters.size) return null;
    const rejected = [...o.voters].filter(([k]) => !o.votes.get(k)!.ok).map(([k, node]) => ({ node, errors: o.votes.get(k)!.errors }));
    if (rejected.length > 0) {
      rejected.sort((x, y) => (x.node < y.node ? -1 : x.node > y.node ? 1 : 0));
      return this.end(o, `refused by ${rejected.map((r) => r.node).join(', ')}; nothing was committed`, rejected);
    }
    this.open = null;
    this.committing = { id, waiting: new Set(o.voters.keys()) };
    return { id, proposer: o.proposer, ok: true, cs: o.cs, voters: [...o.voters.keys()], height: this.agreed().height + 1 };
  }

  /** An ABORT (agreed) from the proposer. */
  abort(from: string, id: string, why: string): RoundEnd | null {
    // Decided already: the proposer stops waiting for the voters' new states too.
    if (this.committing?.id === id && id.startsWith(`${from}#`)) this.committing = null;
    const o = this.open;
    if (o === null || o.id !== id || o.proposer !== from) return null;
    const silent = [...o.voters].filter(([k]) => !o.votes.has(k)).map(([, n]) => n).sort();
    return this.end(o, `refused: ${why}${silent.length > 0 ? ` (no vote from ${silent.join(', ')})` : ''}; nothing was committed`);
  }

  private end(o: Open, message: string, rejected: readonly { node: string; errors: readonly string[] }[] = []): RoundEnd {
    this.open = null;
    return { id: o.id, proposer: o.proposer, ok: false, message, rejected };
  }
}

/** A member's catch-up: what it misses and who has it. */
export interface CatchUp {
  /** The cluster's head and its height. */
  readonly head: string;
  readonly height: number;
  /** Members (memberKey) whose head is that head, to fetch the bundle from. */
  readonly sources: readonly string[];
}

/**
 * Whether the member `self` is behind the cluster: the highest history among the quorate members'
 * STATE of this view is longer than its own (history is linear: only a quorate partition commits).
 * Null when it is not behind (or the view is not complete yet: it cannot tell).
 */
export function catchUp(round: ConfigRound, self: string): CatchUp | null {
  const a = round.agreed();
  const mine = round.stateOf(self);
  if (!a.complete || mine === undefined || a.head === '' || mine.head === a.head || mine.height >= a.height) return null;
  const sources = [...sourcesOf(round, a.head)];
  return { head: a.head, height: a.height, sources };
}

function* sourcesOf(round: ConfigRound, head: string): Generator<string> {
  for (const k of round.memberKeys()) if (round.stateOf(k)?.head === head && round.stateOf(k)?.quorate === true) yield k;
}
