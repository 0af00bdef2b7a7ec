import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  countLines,
  createWasmScanner,
  defaultScanner,
  indexOfScanner,
  LineCounter,
  type NewlineScanner,
} from './count.ts';
import { instantiateNewlineKernel, wasmPageBytes } from './count-wasm.ts';

// The rule of docs/design.md written the obvious way, as the oracle for the fast counter.
function referenceCount(bytes: Uint8Array): number {
  let lines = 0;
  for (const byte of bytes) if (byte === 10) lines++;
  if (bytes.length > 0 && bytes[bytes.length - 1] !== 10) lines++;
  return lines;
}

function countNewlinesReference(bytes: Uint8Array): number {
  let found = 0;
  for (const byte of bytes) if (byte === 10) found++;
  return found;
}

function countChunks(chunks: Uint8Array[], scanner?: NewlineScanner): { lines: number; bytes: number } {
  const counter = new LineCounter(scanner);
  for (const chunk of chunks) counter.push(chunk);
  return { lines: counter.lines, bytes: counter.bytes };
}

function linesOf(text: string): number {
  return countChunks([Buffer.from(text, 'latin1')]).lines;
}

function splitEvery(bytes: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
}

describe('the line rule', () => {
  const cases: [string, string, number][] = [
    ['an empty input has no lines', '', 0],
    ['one byte without a newline is one line', 'a', 1],
    ['a last line without a newline still counts', 'a\nb', 2],
    ['a trailing newline does not add a line', 'a\nb\n', 2],
    ['a lone newline is one (empty) line', '\n', 1],
    ['two newlines are two empty lines', '\n\n', 2],
    ['a blank line in the middle counts', 'a\n\nb', 3],
    ['a lone carriage return is not a line break', 'a\rb', 1],
  ];
  for (const [name, text, expected] of cases) {
    test(`${name}: ${JSON.stringify(text)} → ${expected}`, () => assert.equal(linesOf(text), expected));
  }

  test('CRLF counts the same as LF', () => {
    const lf = 'first\nsecond\n\nfourth\nlast';
    assert.equal(linesOf(lf.replaceAll('\n', '\r\n')), linesOf(lf));
    assert.equal(linesOf(`${lf}\n`.replaceAll('\n', '\r\n')), linesOf(`${lf}\n`));
  });

  test('bytes counts every byte pushed', () => {
    assert.equal(countChunks([Buffer.from('ab\r\n'), Buffer.from('c')]).bytes, 5);
  });
});

describe('chunk boundaries', () => {
  test('a CRLF split across two chunks counts once', () => {
    assert.deepEqual(countChunks([Buffer.from('a\r'), Buffer.from('\nb')]), { lines: 2, bytes: 4 });
    assert.deepEqual(countChunks([Buffer.from('a\r'), Buffer.from('\n')]), { lines: 1, bytes: 3 });
  });

  test('a chunk that is only a newline', () => {
    assert.equal(countChunks([Buffer.from('a'), Buffer.from('\n')]).lines, 1);
    assert.equal(countChunks([Buffer.from('a'), Buffer.from('\n'), Buffer.from('b')]).lines, 2);
    assert.equal(countChunks([Buffer.from('\n')]).lines, 1);
  });

  test('empty chunks change nothing, even last', () => {
    assert.deepEqual(countChunks([Buffer.from('a\nb'), new Uint8Array(0)]), { lines: 2, bytes: 3 });
    assert.deepEqual(countChunks([new Uint8Array(0), Buffer.from('a\n'), new Uint8Array(0)]), {
      lines: 1,
      bytes: 2,
    });
  });

  test('every split point of a sample gives the same count', () => {
    const sample = Buffer.from('héllo\r\nworld\n\n\r\nlast line without newline', 'utf8');
    const expected = referenceCount(sample);
    for (let at = 0; at <= sample.length; at++) {
      assert.equal(
        countChunks([sample.subarray(0, at), sample.subarray(at)]).lines,
        expected,
        `split at byte ${at}`,
      );
      for (let second = at; second <= sample.length; second++) {
        const chunks = [sample.subarray(0, at), sample.subarray(at, second), sample.subarray(second)];
        assert.equal(countChunks(chunks).lines, expected, `split at bytes ${at} and ${second}`);
      }
    }
  });

  test('1-byte chunks count the same as one chunk', () => {
    for (const text of ['a\nb\n', 'a\r\nb', '\n\n', 'x', '']) {
      const bytes = Buffer.from(text);
      assert.deepEqual(
        countChunks(splitEvery(bytes, 1)),
        { lines: referenceCount(bytes), bytes: bytes.length },
        text,
      );
    }
  });

  test('a plain Uint8Array view into a larger buffer counts only its own bytes', () => {
    const backing = new Uint8Array([10, 10, 97, 10, 98, 10, 10]);
    const view = new Uint8Array(backing.buffer, 2, 3); // "a\nb"
    assert.deepEqual(countChunks([view]), { lines: 2, bytes: 3 });
    assert.deepEqual(countChunks([view], indexOfScanner), { lines: 2, bytes: 3 });
  });
});

describe('binary input', () => {
  test('random bytes in random chunk sizes match the reference count', () => {
    for (let round = 0; round < 50; round++) {
      const bytes = randomBytes(1 + Math.floor(Math.random() * 20_000));
      // make newlines dense enough that runs of them and chunk-edge newlines happen
      for (let i = 0; i < bytes.length; i += 1 + Math.floor(Math.random() * 8)) bytes[i] = 10;
      const size = 1 + Math.floor(Math.random() * 300);
      assert.deepEqual(countChunks(splitEvery(bytes, size)), {
        lines: referenceCount(bytes),
        bytes: bytes.length,
      });
    }
  });

  test('bytes that are not UTF-8 and NULs are just bytes', () => {
    const bytes = new Uint8Array([0, 0xff, 0xfe, 10, 0x80, 0, 13, 10, 0xc3]);
    assert.equal(countChunks([bytes]).lines, 3);
  });
});

describe('countLines', () => {
  test('counts a stream of chunks', async () => {
    const chunks = [Buffer.from('one\ntw'), Buffer.from('o\r\nthree'), Buffer.from('\n')];
    assert.deepEqual(await countLines(Readable.from(chunks)), { lines: 3, bytes: 15 });
  });

  test('an empty stream has no lines', async () => {
    assert.deepEqual(await countLines(Readable.from([])), { lines: 0, bytes: 0 });
  });

  test('an error from the source rejects', async () => {
    async function* failing() {
      yield Buffer.from('a\n');
      throw new Error('connection reset');
    }
    await assert.rejects(countLines(failing()), /connection reset/);
  });
});

// Random bytes with newlines dense enough that runs of them, and newlines on
// every kind of boundary, happen.
function randomInput(length: number): Buffer {
  const bytes = randomBytes(length);
  for (let i = 0; i < length; i += 1 + Math.floor(Math.random() * 8)) bytes[i] = 10;
  return bytes;
}

describe('the WebAssembly SIMD scanner', () => {
  test('is the default scanner on this Node.js', () => {
    assert.notEqual(defaultScanner, indexOfScanner);
    assert.ok('memory' in defaultScanner, 'the default scanner has a WebAssembly memory');
  });

  test('the kernel counts every start offset and length up to a few 64-byte turns', () => {
    const kernel = instantiateNewlineKernel(1);
    const input = randomInput(600);
    kernel.memory.set(input, 0);
    for (let at = 0; at < 80; at++) {
      for (let length = 0; at + length <= input.length; length++) {
        const expected = countNewlinesReference(input.subarray(at, at + length));
        if (kernel.count(at, length) !== expected) {
          assert.fail(`count(${at}, ${length}) = ${kernel.count(at, length)}, expected ${expected}`);
        }
      }
    }
  });

  test('a memory full of newlines counts every byte (the 8-bit lanes never overflow)', () => {
    // Each 8-bit lane adds up to 4 per 64-byte turn and is widened every 63
    // turns; one more turn per block would wrap 256 to 0 and lose counts here.
    const kernel = instantiateNewlineKernel(2);
    kernel.memory.fill(10);
    assert.equal(kernel.count(0, kernel.memory.length), kernel.memory.length);
    for (const length of [63 * 64 - 1, 63 * 64, 63 * 64 + 1, 64 * 64, 2 * 63 * 64 + 63]) {
      assert.equal(kernel.count(1, length), length, `length ${length}`);
    }
  });

  test('chunk sizes 1..N split the same random input to the same count as the reference', () => {
    const input = randomInput(3_000);
    const expected = { lines: referenceCount(input), bytes: input.length };
    for (const scanner of [defaultScanner, indexOfScanner]) {
      for (let size = 1; size <= 300; size++) {
        assert.deepEqual(countChunks(splitEvery(input, size), scanner), expected, `chunks of ${size}`);
      }
    }
  });

  test('random inputs in random chunk sizes match the reference', () => {
    for (let round = 0; round < 100; round++) {
      const input = randomInput(Math.floor(Math.random() * 100_000));
      const size = 1 + Math.floor(Math.random() * 20_000);
      assert.deepEqual(countChunks(splitEvery(input, size)), {
        lines: referenceCount(input),
        bytes: input.length,
      });
    }
  });

  test('a chunk larger than the scratch memory is counted piece by piece', () => {
    const scanner = createWasmScanner(wasmPageBytes);
    assert.equal(scanner.memory.length, wasmPageBytes);
    // newlines right before, on and after each piece boundary
    const input = randomInput(3 * wasmPageBytes + 1_234);
    for (const edge of [wasmPageBytes, 2 * wasmPageBytes, 3 * wasmPageBytes]) {
      input[edge - 1] = 10;
      input[edge] = 10;
      input[edge + 1] = 97;
    }
    for (const length of [wasmPageBytes - 1, wasmPageBytes, wasmPageBytes + 1, input.length]) {
      const chunk = input.subarray(0, length);
      assert.equal(scanner.countNewlines(chunk), countNewlinesReference(chunk), `length ${length}`);
    }
    // a view that starts at an odd offset of its buffer
    const odd = input.subarray(3);
    assert.equal(scanner.countNewlines(odd), countNewlinesReference(odd));
    assert.deepEqual(countChunks([input.subarray(0, 100), input.subarray(100)], scanner), {
      lines: referenceCount(input),
      bytes: input.length,
    });
  });

  test('a chunk that already lies in the scanner memory is counted where it lies', () => {
    const scanner = createWasmScanner(2 * wasmPageBytes);
    const input = randomInput(scanner.memory.length);
    scanner.memory.set(input);
    for (const [at, length] of [
      [0, scanner.memory.length],
      [7, 1_000],
      [wasmPageBytes - 3, 70_000],
      [scanner.memory.length - 65, 65],
    ] as const) {
      const view = scanner.memory.subarray(at, at + length);
      assert.equal(scanner.countNewlines(view), countNewlinesReference(view), `view at ${at}`);
    }
    // counted in place: the memory still holds the input, not a copy of the last view
    assert.deepEqual(Buffer.from(scanner.memory), input);
  });

  test('without WebAssembly (node --jitless) the counter falls back to indexOf and counts the same', () => {
    const module = fileURLToPath(new URL('./count.ts', import.meta.url));
    const script = `
      const { countLines, defaultScanner, indexOfScanner } = await import(${JSON.stringify(module)});
      const counted = await countLines([Buffer.from('a\\r\\nb\\n\\nc')]);
      console.log(JSON.stringify({ wasm: typeof WebAssembly, fallback: defaultScanner === indexOfScanner, counted }));
    `;
    const child = spawnSync(
      process.execPath,
      ['--jitless', '--no-warnings', '--import', 'tsx', '--input-type=module', '--eval', script],
      { encoding: 'utf8' },
    );
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout.trim()), {
      wasm: 'undefined',
      fallback: true,
      counted: { lines: 4, bytes: 7 },
    });
  });
});
