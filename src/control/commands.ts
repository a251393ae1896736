// The console command table: words -> handler. Matching is case-insensitive on the command words
// (as Momentum's console), longest match first; what follows is the handler's arguments.
// Main thread only; handlers may be async but must not block the event loop.
import { ErrorCode, VipError } from '../errors.js';

export type CommandHandler = (args: string[]) => string | Promise<string>;

interface Entry {
  words: string[];
  usage: string;
  help: string;
  handler: CommandHandler;
}

export class CommandTable {
  private readonly entries: Entry[] = [];

  /** Registers `usage` (e.g. "config reload" or "cluster duravip move IP to NODE"); the fixed words are the lowercase ones before the first upper-case placeholder. */
  add(usage: string, help: string, handler: CommandHandler): void {
    const words: string[] = [];
    for (const w of usage.split(/\s+/)) {
      if (w === '' || /^[A-Z[]/.test(w)) break;
      words.push(w);
    }
    if (words.length === 0) throw new Error(`command usage needs a fixed word: ${usage}`);
    if (this.entries.some((e) => e.words.join(' ') === words.join(' '))) throw new Error(`duplicate command: ${usage}`);
    this.entries.push({ words, usage, help, handler });
    this.entries.sort((a, b) => b.words.length - a.words.length);
  }

  async run(argv: string[]): Promise<string> {
    const lower = argv.map((a) => a.toLowerCase());
    for (const e of this.entries) {
      if (e.words.length <= lower.length && e.words.every((w, i) => w === lower[i])) {
        return e.handler(argv.slice(e.words.length));
      }
    }
    throw new VipError(
      ErrorCode.CONTROL_UNKNOWN_COMMAND,
      argv.length === 0 ? 'no command given; try "help"' : `unknown command "${argv.join(' ')}"; try "help"`,
    );
  }

  help(): string {
    const rows = [...this.entries].sort((a, b) => a.usage.localeCompare(b.usage));
    const width = Math.max(...rows.map((r) => r.usage.length));
    return rows.map((r) => `${r.usage.padEnd(width)}  ${r.help}`).join('\n') + '\n';
  }
}
