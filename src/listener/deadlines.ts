// Whole-command and whole-DATA deadlines (issue 12 section 4: `Timeout` restarts with every byte): a
// command line within Command_Deadline of its first byte; a message's data, 354 to final dot, within
// Data_Deadline plus a second per Min_Data_Rate bytes (Postfix's smtpd_per_request_deadline and
// smtpd_min_data_rate). Pure functions of the parser's clock marks and a clock; any thread.

/** When the parts of a session that have a deadline started (ms of the listener's clock; 0 = none). */
export interface DeadlineMarks {
  /** First byte of a command line that has not ended yet. */
  commandSince: number;
  /** The 354 of the message whose data is being received. */
  dataSince: number;
  /** Data bytes received since then. */
  dataBytes: number;
  /** Since when the listener holds the data back (waiting for body memory): the client is not late. */
  heldSince: number;
  /** Time the data was held back before, in ms (not counted against the client). */
  heldMs: number;
}

export interface DeadlineLimits {
  commandMs: number;
  dataMs: number;
  /** Bytes per second of data that each extend the data deadline by one second; 0: no extension. */
  minDataRate: number;
}

export type DeadlineKind = 'command' | 'data';

/** Which deadline a session has passed at `now`, if any. */
export function deadlinePassed(m: DeadlineMarks, now: number, l: DeadlineLimits): DeadlineKind | null {
  if (m.dataSince > 0) {
    if (m.heldSince > 0) return null;
    const allowance = l.minDataRate > 0 ? (m.dataBytes * 1000) / l.minDataRate : 0;
    return now - m.dataSince - m.heldMs > l.dataMs + allowance ? 'data' : null;
  }
  if (m.commandSince > 0 && now - m.commandSince > l.commandMs) return 'command';
  return null;
}

/** How often the listener looks: a quarter of the shorter deadline, between 50 ms and 1 s, so a
 *  deadline is enforced at most that late and a listener with thousands of sessions scans rarely. */
export function checkInterval(l: DeadlineLimits): number {
  return Math.min(1_000, Math.max(50, Math.floor(Math.min(l.commandMs, l.dataMs) / 4)));
}
