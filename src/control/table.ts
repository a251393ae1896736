// Plain-text columns for console command output (mailq-style views, cluster membership): each
// column as wide as its widest cell, two spaces apart, the last column unpadded. Pure string
// building; main thread, once per console command.

/** Rows of cells as aligned text, one line per row, ending in a newline. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
