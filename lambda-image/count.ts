// The line rule (DESIGN.md): the number of `\n` bytes, plus one when the input
// is non-empty and does not end in `\n`. Works on raw bytes, one chunk at a
// time, holding nothing but two counters and the last byte seen, so memory does
// not grow with the file. CRLF needs no special case: `\r` is just a byte.

const newline = 0x0a;

export class LineCounter {
  #newlines = 0;
  #bytes = 0;
  #last = -1;

  push(chunk: Uint8Array): void {
    const length = chunk.byteLength;
    if (length === 0) return;
    // Buffer.indexOf runs a native memchr; a view shares the chunk's memory, no copy.
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, length);
    let found = 0;
    let at = bytes.indexOf(newline, 0);
    while (at !== -1) {
      found++;
      at = bytes.indexOf(newline, at + 1);
    }
    this.#newlines += found;
    this.#bytes += length;
    this.#last = bytes[length - 1] as number;
  }

  get lines(): number {
    return this.#newlines + (this.#bytes > 0 && this.#last !== newline ? 1 : 0);
  }

  get bytes(): number {
    return this.#bytes;
  }
}

export async function countLines(
  source: AsyncIterable<Uint8Array>,
): Promise<{ lines: number; bytes: number }> {
  const counter = new LineCounter();
  for await (const chunk of source) counter.push(chunk);
  return { lines: counter.lines, bytes: counter.bytes };
}
