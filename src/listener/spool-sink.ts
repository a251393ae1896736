// The listener's view of the spool in a worker thread: attaches to the process-wide native spool
// the main thread opened, and adapts it to MessageSink. Worker thread; appends are synchronous
// copies into native memory, commits resolve after the group commit's fdatasync.
import { attachSpool } from '../spool/index.js';
import type { MessageInProgress, MessageSink } from './esmtp.js';

export function spoolSink(directory: string): MessageSink {
  const writer = attachSpool(directory);
  return {
    begin(): MessageInProgress {
      return writer.begin();
    },
  };
}
