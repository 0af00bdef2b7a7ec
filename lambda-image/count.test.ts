import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { countLines, LineCounter } from './count.ts';

// The rule from DESIGN.md written the obvious way, as the oracle for the fast counter.
function referenceCount(bytes: Uint8Array): number {
  let lines = 0;
  for (const byte of bytes) if (byte === 10) lines++;
  if (bytes.length > 0 && bytes[bytes.length - 1] !== 10) lines++;
  return lines;
}

function countChunks(chunks: Uint8Array[]): { lines: number; bytes: number } {
  const counter = new LineCounter();
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
