// What the whole-process benchmarks print: number formats for their markdown tables and the
// machine line of their headers. Pure except machineLine (reads /proc/cpuinfo once per call).
import fs from 'node:fs';
import os from 'node:os';

/** Whole number with thousands separators; '-' when not measured. */
export const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
/** Two decimals; '-' when not measured. */
export const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
export const kib = (n: number): string => `${n / 1024} KiB`;

/** "date ...; N CPU (model); Node vX; kernel" for a run's header. */
export function machineLine(): string {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  return `date ${new Date().toISOString()}; ${os.cpus().length} CPU (${cpu}); Node ${process.version}; ${os.release()}`;
}
