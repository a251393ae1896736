// This node's member of the console group ("vipmta-console", its own CPG group via GroupLink, so a
// request never waits on the election or the shaping group): multicasts console requests, runs those
// delivered to it through `run` (the host's command table) and multicasts the answers in chunks,
// and gathers its own requests' answers until all came, a member left, or the timeout. It also
// carries every member's queue summary (queue-summary.ts): sent when it changed, paced, and after
// each view change; the latest of each member is kept.
// Main thread; nothing blocks (sends are queued to the addon's IO thread).

import type { Logger } from 'pino';
import { ErrorCode, VipError } from '../errors.js';
import type { CorosyncGroup, CpgConfChange, CpgMember } from '../native/index.js';
import { decodeConsoleMessage, decodeReplyBody, encodeConsoleMessage, replyChunks, type ConsoleMessage, type ReplyBody } from './console-wire.js';
import { leftWhy, listen, Refusals, ReplayGuard, unrefTimer } from './group-inbox.js';
import { GroupLink } from './group-link.js';
import { QueueSummaryStore, SummaryPacer, type QueueSummary } from './queue-summary.js';
import { memberKey } from './view.js';

export const CONSOLE_GROUP = 'vipmta-console';
/** Requests of one sender remembered for refusing a replay (ids only grow; this bounds the map). */
const MAX_SENDERS = 1024;

export interface ConsoleGroupOptions {
  /** This node's name (Nodename). */
  readonly node: string;
  readonly logger: Logger;
  /** The HMAC key (consoleKey of Cluster_Secret), read at every message so a reload takes a new secret; null: no secret. */
  readonly key: () => Buffer | null;
  /** Runs a console command here, as the local console does, and says what it answered. */
  readonly run: (argv: string[]) => Promise<ReplyBody>;
  /** A request's argv as the log may show it (CommandTable.logged: private arguments left out). */
  readonly logged?: (argv: readonly string[]) => string;
  /** The Node names of the Cluster stanza (members this node expects to see). */
  readonly configured?: () => readonly string[];
  /** Tests: a fake join, this process's pid in member keys, timers. */
  readonly join?: (name: string) => Promise<CorosyncGroup>;
  readonly pid?: number;
  readonly setTimer?: (fn: () => void, ms: number) => () => void;
  /** This node's queue summary now; absent: this member sends none (it still keeps the others'). */
  readonly summary?: () => QueueSummary;
  /** Tests: the summary pacer's clock and repeating timer. */
  readonly now?: () => number;
  readonly every?: (fn: () => void, ms: number) => () => void;
}

/** One member asked: its answer, or why there is none. */
export interface MemberAnswer {
  /** Its node name (from its hello), or "nodeid N" when it has not said it yet. */
  readonly node: string;
  readonly answer: ReplyBody | null;
  /** Without an answer: "no answer within 10 s", "left the group (procdown) before answering". */
  readonly why?: string;
}

export interface Gathered {
  readonly answers: MemberAnswer[];
  /** Members this node cannot see: configured, or seen in an earlier view, and not in this one. */
  readonly missing: { node: string; why: string }[];
}

interface Pending {
  readonly expected: Map<string, string>;
  readonly chunks: Map<string, (Buffer | undefined)[]>;
  readonly done: Map<string, MemberAnswer>;
  readonly timeoutText: string;
  cancel: () => void;
  resolve: (g: Gathered) => void;
}

/** "10 s", "2.5 s", "500 ms": how long the requester waited. */
export function formatWait(ms: number): string {
  return ms >= 1000 ? `${Number((ms / 1000).toFixed(3))} s` : `${ms} ms`;
}

export class ConsoleGroup {
  private readonly link: GroupLink;
  private group: CorosyncGroup | null = null;
  private members: CpgMember[] = [];
  /** Member key -> node name, from hellos (and requests, replies: each names its sender). */
  private readonly names = new Map<string, string>();
  /** Names seen in some view since start that are not in the current one, with why they went. */
  private readonly gone = new Map<string, string>();
  /** A request is run once: its id must be above the last one run for that sender. */
  private readonly requests = new ReplayGuard(MAX_SENDERS);
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly pid: number;
  private readonly setTimer: (fn: () => void, ms: number) => () => void;
  /** Messages that did not authenticate: logged once per sender and reason, not per message. */
  private readonly refusals: Refusals;
  /** The other members' latest queue summaries. */
  private readonly summaries = new QueueSummaryStore();
  private readonly pacer: SummaryPacer | null;

  constructor(private readonly o: ConsoleGroupOptions) {
    this.pid = o.pid ?? process.pid;
    this.setTimer = o.setTimer ?? unrefTimer;
    this.refusals = new Refusals(o.logger, 'cluster console: ignored a message that does not authenticate or decode');
    this.link = new GroupLink({
      name: CONSOLE_GROUP, logger: o.logger, prefix: 'cluster console: ', without: 'console --cluster cannot reach the other nodes',
      joined: (g) => this.joined(g), lost: () => this.lost(),
      ...(o.join ? { join: o.join } : {}),
    });
    const build = o.summary;
    this.pacer = build === undefined ? null : new SummaryPacer({
      build, send: (s) => this.sendSummary(s), ready: () => this.group !== null && this.o.key() !== null,
      ...(o.now ? { now: o.now } : {}), ...(o.every ? { every: o.every } : {}),
    });
  }

  start(): void {
    this.link.start();
    this.pacer?.start();
  }

  stop(): void {
    this.link.stop();
    this.pacer?.stop();
    this.group = null;
    this.summaries.clear();
    this.finishAll('this node left the console group');
  }

  /** Why this node cannot ask the others (not joined), or null. */
  get unavailable(): string | null {
    if (this.group !== null) return null;
    return `not in the console group (corosync: ${this.link.joinError ?? (this.link.waiting ? 'waiting for corosync to answer' : 'not joined yet')})`;
  }

  /** The members of the current view, by node name where known, in name order. */
  memberNames(): string[] {
    return this.members.map((m) => this.label(memberKey(m.nodeId, m.pid))).sort();
  }

  /** The latest queue summary of every other member of the view, in node-name order. */
  queueSummaries(): QueueSummary[] {
    return this.summaries.list();
  }

  /** Configured or earlier members not in the current view. */
  missing(): { node: string; why: string }[] {
    const here = new Set(this.memberNames());
    const out = new Map<string, string>();
    for (const [node, why] of this.gone) if (!here.has(node)) out.set(node, why);
    for (const node of this.o.configured?.() ?? []) if (!here.has(node) && !out.has(node)) out.set(node, 'a configured Node not in this view');
    return [...out].map(([node, why]) => ({ node, why })).sort((a, b) => a.node.localeCompare(b.node));
  }

  /**
   * Multicasts `argv` for every member (target null) or the member named `target`, and resolves
   * with every answer once each member asked has answered or left, or after timeoutMs.
   */
  request(argv: string[], target: string | null, timeoutMs: number): Promise<Gathered> {
    const g = this.group;
    const key = this.o.key();
    const why = this.unavailable;
    if (why !== null || g === null) throw new VipError(ErrorCode.CLUSTER_REFUSED, why ?? 'not in the console group');
    if (key === null) throw new VipError(ErrorCode.CLUSTER_REFUSED, 'console --cluster needs Cluster_Secret (it authenticates the requests and answers)');
    const expected = new Map<string, string>();
    for (const m of this.members) {
      const k = memberKey(m.nodeId, m.pid);
      const name = this.label(k);
      if (target === null || name === target) expected.set(k, name);
    }
    if (expected.size === 0) {
      throw new VipError(ErrorCode.CLUSTER_REFUSED, `${target} is not a member of the view; members: ${this.memberNames().join(', ')}${this.gone.has(target!) ? ` (${target}: ${this.gone.get(target!)})` : ''}`);
    }
    const id = this.nextId++;
    const self = memberKey(g.localNodeId, this.pid);
    return new Promise<Gathered>((resolve) => {
      const p: Pending = { expected, chunks: new Map(), done: new Map(), timeoutText: `no answer within ${formatWait(timeoutMs)}`, cancel: () => undefined, resolve };
      this.pending.set(id, p);
      p.cancel = this.setTimer(() => this.finish(id), timeoutMs);
      try {
        g.send(encodeConsoleMessage(key, { type: 'request', from: self, node: this.o.node, id, target, argv }));
      } catch (err) {
        this.pending.delete(id);
        p.cancel();
        throw new VipError(ErrorCode.CLUSTER_REFUSED, `cannot multicast the request: ${(err as Error).message}`);
      }
    });
  }

  private label(k: string): string {
    return this.names.get(k) ?? `nodeid ${k.slice(0, k.indexOf(':'))}`;
  }

  private joined(g: CorosyncGroup): void {
    this.group = g;
    listen(g, (c) => this.onConfchg(g, c), (from, data) => this.onMessage(g, from, data));
    this.o.logger.info({ group: CONSOLE_GROUP }, 'cluster console: joined the console group');
  }

  private lost(): void {
    this.group = null;
    this.members = [];
    this.summaries.clear();
    this.finishAll('this node lost corosync before it answered');
  }

  private onConfchg(g: CorosyncGroup, c: CpgConfChange): void {
    if (this.group !== g) return;
    this.members = c.members;
    const now = new Set(c.members.map((m) => memberKey(m.nodeId, m.pid)));
    for (const l of c.left) {
      const k = memberKey(l.nodeId, l.pid);
      const name = this.names.get(k);
      const why = leftWhy(l.reason);
      if (name !== undefined) {
        this.names.delete(k);
        if (![...this.names.entries()].some(([kk, n]) => n === name && now.has(kk))) this.gone.set(name, `${why}`);
      }
      // A member asked that leaves before its whole answer came has none (agreed order: a reply
      // it sent before leaving was delivered before this change).
      for (const [id, p] of this.pending) {
        if (p.expected.has(k) && !p.done.has(k)) {
          p.done.set(k, { node: p.expected.get(k)!, answer: null, why: `${why.replace('left the group', 'left the group before answering')}` });
          this.maybeFinish(id);
        }
      }
    }
    this.hello(g);
    // A member gone takes its queue with it (from here); a joiner learns everyone's from the sends
    // that follow this change on every member.
    this.summaries.retain(now);
    this.pacer?.viewChanged();
  }

  /** Multicasts this node's summary; false when it cannot (no group, no secret, corosync refused). */
  private sendSummary(s: QueueSummary): boolean {
    const g = this.group;
    const key = this.o.key();
    if (g === null || key === null) return false;
    try {
      g.send(encodeConsoleMessage(key, { type: 'queues', from: memberKey(g.localNodeId, this.pid), node: this.o.node, summary: s }));
      return true;
    } catch (err) {
      this.o.logger.warn({ err }, 'cluster console: cannot multicast the queue summary');
      return false;
    }
  }

  private hello(g: CorosyncGroup): void {
    const key = this.o.key();
    if (key === null) return;
    try {
      g.send(encodeConsoleMessage(key, { type: 'hello', from: memberKey(g.localNodeId, this.pid), node: this.o.node }));
    } catch (err) {
      this.o.logger.warn({ err }, 'cluster console: cannot multicast');
    }
  }

  private onMessage(g: CorosyncGroup, from: string, data: Buffer): void {
    if (this.group !== g) return;
    const key = this.o.key();
    if (key === null) return;
    const m = this.refusals.take(decodeConsoleMessage(key, data, from), from);
    if (m === null) return;
    this.names.set(from, m.node);
    this.gone.delete(m.node);
    if (m.type === 'request') this.onRequest(g, key, m);
    else if (m.type === 'reply') this.onReply(g, m);
    else if (m.type === 'queues' && from !== memberKey(g.localNodeId, this.pid) && this.members.some((x) => memberKey(x.nodeId, x.pid) === from)) this.summaries.set(from, m.summary);
  }

  private onRequest(g: CorosyncGroup, key: Buffer, m: Extract<ConsoleMessage, { type: 'request' }>): void {
    if (m.target !== null && m.target !== this.o.node) return;
    if (!this.requests.take(m.from, m.id)) {
      this.o.logger.warn({ from: m.from, id: m.id }, 'cluster console: ignored a repeated request');
      return;
    }
    this.o.logger.info({ command: this.o.logged?.(m.argv) ?? m.argv.join(' '), by: m.node }, 'cluster console: running a request');
    // Started on delivery (the agreed point); its answer goes whenever it is ready.
    void this.o.run([...m.argv]).then((body) => {
      if (this.group !== g) return;
      const self = memberKey(g.localNodeId, this.pid);
      const chunks = replyChunks(body);
      try {
        chunks.forEach((c, seq) => g.send(encodeConsoleMessage(key, { type: 'reply', from: self, node: this.o.node, to: m.from, id: m.id, seq, of: chunks.length, body: c })));
      } catch (err) {
        this.o.logger.warn({ err }, 'cluster console: cannot multicast an answer');
      }
    });
  }

  private onReply(g: CorosyncGroup, m: Extract<ConsoleMessage, { type: 'reply' }>): void {
    if (m.to !== memberKey(g.localNodeId, this.pid)) return;
    const p = this.pending.get(m.id);
    if (p === undefined || !p.expected.has(m.from) || p.done.has(m.from)) return;
    let parts = p.chunks.get(m.from);
    if (parts === undefined || parts.length !== m.of) p.chunks.set(m.from, parts = new Array<Buffer | undefined>(m.of).fill(undefined));
    parts[m.seq] = m.body;
    if (parts.some((x) => x === undefined)) return;
    p.chunks.delete(m.from);
    const body = decodeReplyBody(Buffer.concat(parts as Buffer[]));
    p.done.set(m.from, body === null ? { node: p.expected.get(m.from)!, answer: { ok: false, code: 'ERR_CONTROL_BAD_RESPONSE', error: 'an answer that does not decode' } } : { node: m.node, answer: body });
    this.maybeFinish(m.id);
  }

  private maybeFinish(id: number): void {
    const p = this.pending.get(id);
    if (p !== undefined && p.done.size === p.expected.size) this.finish(id);
  }

  /** Resolves request `id` with what came; every member still silent gets the timeout's text (or `why`). */
  private finish(id: number, why?: string): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    p.cancel();
    const answers = [...p.expected].map(([k, name]) => p.done.get(k) ?? { node: name, answer: null, why: why ?? p.timeoutText });
    answers.sort((a, b) => a.node.localeCompare(b.node));
    p.resolve({ answers, missing: this.missing() });
  }

  private finishAll(why: string): void {
    for (const id of [...this.pending.keys()]) this.finish(id, why);
  }
}
