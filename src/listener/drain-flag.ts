// The node-wide "drained" word (`cluster drain`): one SharedArrayBuffer made by the main thread and
// handed to every ESMTP listener and #mmove receiver spec, so a drain reaches every worker at once
// without a message round. Word 0: 1 drained, 0 not. Any thread; Atomics only, never blocks.

export function newDrainFlag(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

/** Main thread: the node was drained or undrained. */
export function setDrainFlag(buffer: SharedArrayBuffer, drained: boolean): void {
  Atomics.store(new Int32Array(buffer), 0, drained ? 1 : 0);
}

/** A worker's view of the word: read at connect (ESMTP) or MAIL (#mmove), once each. */
export class DrainFlag {
  private readonly a: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.a = new Int32Array(buffer);
  }

  get drained(): boolean {
    return Atomics.load(this.a, 0) !== 0;
  }
}
