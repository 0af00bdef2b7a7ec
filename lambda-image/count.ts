import { instantiateNewlineKernel, wasmPageBytes } from './count-wasm.ts';

// The line rule (docs/design.md): the number of `\n` bytes, plus one when the input
// is non-empty and does not end in `\n`. Works on raw bytes, one chunk at a
// time, holding nothing but two counters and the last byte seen, so memory does
// not grow with the file. CRLF needs no special case: `\r` is just a byte.

const newline = 0x0a;

// How the `\n` bytes of one chunk are counted; the line rule above is the same
// whichever is used.
export interface NewlineScanner {
  countNewlines(bytes: Uint8Array): number;
}

// One native memchr call (Buffer.indexOf) per newline: ~27 ns each, so under
// 3 GiB/s at 80-byte lines. Kept as the fallback when WebAssembly is not
// available and as the baseline the benchmark compares against.
export const indexOfScanner: NewlineScanner = {
  countNewlines(chunk) {
    // a view shares the chunk's memory, no copy
    const bytes = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let found = 0;
    let at = bytes.indexOf(newline, 0);
    while (at !== -1) {
      found++;
      at = bytes.indexOf(newline, at + 1);
    }
    return found;
  },
};

interface WasmScanner extends NewlineScanner {
  // This scanner's own WebAssembly memory. A chunk that is a view into it is
  // counted where it lies; any other chunk is copied into it, piece by piece,
  // before counting, which overwrites what was there.
  memory: Uint8Array;
}

// The copy is bound by reading the chunk itself: scratch sizes from 16 KiB to
// 4 MiB counted within 10% of each other, 256 KiB the fastest (it stays in the
// L2 cache between the copy and the count; bench/README.md).
const defaultScratchBytes = 256 * 1024;

// A WebAssembly SIMD loop (count-wasm.ts) that compares 16 bytes per instruction,
// ~50 GiB/s on data in cache, whatever the line length. WebAssembly can read only
// its own memory, so a chunk from anywhere else is copied in first (at memcpy speed).
export function createWasmScanner(memoryBytes: number = defaultScratchBytes): WasmScanner {
  const kernel = instantiateNewlineKernel(Math.max(1, Math.ceil(memoryBytes / wasmPageBytes)));
  const { memory, count } = kernel;
  return {
    memory,
    countNewlines(chunk) {
      // `>>> 0`: the kernel returns an i32, read back as signed; a piece never
      // holds 2^31 newlines, but a chunk inside a large memory could.
      if (chunk.buffer === memory.buffer) return count(chunk.byteOffset, chunk.byteLength) >>> 0;
      let found = 0;
      for (let at = 0; at < chunk.byteLength; at += memory.byteLength) {
        const piece = chunk.subarray(at, at + memory.byteLength);
        memory.set(piece, 0);
        found += count(0, piece.byteLength) >>> 0;
      }
      return found;
    },
  };
}

// WebAssembly is missing only when Node.js runs with --jitless (or an embedder
// turned it off). Then, or if the module failed to compile for any other
// reason, the count stays right and only gets slower; count.test.ts checks that
// the WebAssembly scanner is the default wherever the tests run.
function createDefaultScanner(): NewlineScanner {
  try {
    return createWasmScanner();
  } catch {
    return indexOfScanner;
  }
}

// Shared by every counter in the process: push() copies and counts
// synchronously, so no two counters ever use its memory at the same time.
export const defaultScanner: NewlineScanner = createDefaultScanner();

export class LineCounter {
  #newlines = 0;
  #bytes = 0;
  #last = -1;
  readonly #scanner: NewlineScanner;

  constructor(scanner: NewlineScanner = defaultScanner) {
    this.#scanner = scanner;
  }

  push(chunk: Uint8Array): void {
    const length = chunk.byteLength;
    if (length === 0) return;
    this.#newlines += this.#scanner.countNewlines(chunk);
    this.#bytes += length;
    this.#last = chunk[length - 1] as number;
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
  scanner: NewlineScanner = defaultScanner,
): Promise<{ lines: number; bytes: number }> {
  const counter = new LineCounter(scanner);
  for await (const chunk of source) counter.push(chunk);
  return { lines: counter.lines, bytes: counter.bytes };
}
