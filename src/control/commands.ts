// The console command table: words -> handler. Matching is case-insensitive on the command words
// (as Momentum's console), longest match first; what follows is the handler's arguments.
// Arguments a command's usage does not declare are refused before its handler runs: an unknown
// `--flag`, any word after a command that takes none (ERR_CONTROL_BAD_REQUEST, the usage code).
// Main thread only; handlers may be async but must not block the event loop.
import { ErrorCode, VipError } from '../errors.js';

/** An argument that looks like a flag: `-d`, `--limit` (not `-`, `--`, `-5`). */
const FLAG_RE = /^--?[A-Za-z]/;

export type CommandHandler = (args: string[]) => string | Promise<string>;

interface Entry {
  words: string[];
  usage: string;
  /** Whether the usage has anything after the fixed words. */
  takesArgs: boolean;
  /** The flags the usage declares (`-d`, `--binding`). */
  flags: Set<string>;
  help: string;
  handler: CommandHandler;
  /** Its arguments are not logged (a config change's file contents may hold secrets). */
  private: boolean;
}

export class CommandTable {
  private readonly entries: Entry[] = [];

  /** Registers `usage` (e.g. "config reload" or "cluster duravip move IP to NODE"); the fixed words are the lowercase ones before the first upper-case placeholder. */
  add(usage: string, help: string, handler: CommandHandler, opts?: { privateArgs?: boolean }): void {
    const words: string[] = [];
    for (const w of usage.split(/\s+/)) {
      if (w === '' || /^[A-Z[]/.test(w)) break;
      words.push(w);
    }
    if (words.length === 0) throw new Error(`command usage needs a fixed word: ${usage}`);
    if (this.entries.some((e) => e.words.join(' ') === words.join(' '))) throw new Error(`duplicate command: ${usage}`);
    const takesArgs = usage.trim().split(/\s+/).length > words.length;
    const flags = new Set([...usage.matchAll(/(?:^|[\s[|])(--?[A-Za-z][\w-]*)/g)].map((m) => m[1]!));
    this.entries.push({ words, usage, help, handler, takesArgs, flags, private: opts?.privateArgs === true });
    this.entries.sort((a, b) => b.words.length - a.words.length);
  }

  async run(argv: string[]): Promise<string> {
    const e = this.entry(argv);
    if (e !== null) {
      const args = argv.slice(e.words.length);
      const name = e.words.join(' ');
      const unknown = args.find((a) => FLAG_RE.test(a) && !e.flags.has(a));
      if (unknown !== undefined) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `unknown option ${unknown} for ${name}; usage: ${e.usage}`);
      if (!e.takesArgs && args.length > 0) throw new VipError(ErrorCode.CONTROL_BAD_REQUEST, `${name} takes no arguments; usage: ${e.usage}`);
      return e.handler(args);
    }
    throw new VipError(
      ErrorCode.CONTROL_UNKNOWN_COMMAND,
      argv.length === 0 ? 'no command given; try "help"' : `unknown command "${argv.join(' ')}"; try "help"`,
    );
  }

  /** `argv` as a log line may show it: whole, or for a command whose arguments are private its
   *  words and how many bytes of arguments were left out. */
  logged(argv: readonly string[]): string {
    const e = this.entry(argv);
    if (e === null || !e.private) return argv.join(' ');
    const bytes = argv.slice(e.words.length).reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
    return `${e.words.join(' ')} (${bytes} bytes of arguments not logged)`;
  }

  /** The command `argv` runs, as its fixed words ("shaping suspend"), or null when none matches. */
  match(argv: readonly string[]): string | null {
    return this.entry(argv)?.words.join(' ') ?? null;
  }

  private entry(argv: readonly string[]): Entry | null {
    const lower = argv.map((a) => a.toLowerCase());
    return this.entries.find((e) => e.words.length <= lower.length && e.words.every((w, i) => w === lower[i])) ?? null;
  }

  help(): string {
    const rows = [...this.entries].sort((a, b) => a.usage.localeCompare(b.usage));
    const width = Math.max(...rows.map((r) => r.usage.length));
    return rows.map((r) => `${r.usage.padEnd(width)}  ${r.help}`).join('\n') + '\n';
  }
}
