import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { countLinesReference } from '../test/support/generator/emulator.ts';
import { formatAmount, GeneratedFileStream, generateLines, maxLineBytes } from './content.ts';
import { NameStyle } from './names.ts';
import { type FilePlan, LineEnding, planFile, planFiles } from './plan.ts';

const base = { prefix: 'uploads/', names: NameStyle.simple, runId: 'testrun' };

async function render(plan: FilePlan, chunkBytes?: number) {
  const stream = new GeneratedFileStream(plan, chunkBytes === undefined ? {} : { chunkBytes });
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return { bytes: Buffer.concat(chunks), chunks, stats: stream.stats() };
}

test('the planned line count is exactly the line count of the bytes produced, for every file shape', async () => {
  const shapes = new Set<string>();
  const plans = [...planFiles({ ...base, count: 300, minLines: 0, maxLines: 400, seed: 2024 })];
  // single-line files are where a missing final newline matters most
  plans.push(...planFiles({ ...base, count: 40, minLines: 1, maxLines: 2, seed: 9 }));
  for (const plan of plans) {
    const { bytes, stats } = await render(plan, 512);
    assert.equal(countLinesReference(bytes), plan.lines, `${plan.key}: planned ${plan.lines}`);
    assert.equal(stats.lines, plan.lines);
    assert.equal(stats.bytes, bytes.length);
    assert.equal(stats.sha256, createHash('sha256').update(bytes).digest('hex'));
    if (plan.lines === 0) shapes.add('empty');
    else if (!plan.finalNewline) shapes.add('no final newline');
    else shapes.add('final newline');
    if (plan.lines > 0 && plan.eol === LineEnding.crlf) shapes.add('crlf');
    if (plan.lines === 1 && !plan.finalNewline) shapes.add('one line, no newline');
  }
  assert.deepEqual([...shapes].sort(), [
    'crlf',
    'empty',
    'final newline',
    'no final newline',
    'one line, no newline',
  ]);
});

test('an empty file is zero bytes and a file without a final newline ends on text', async () => {
  const plan = planFile({ ...base, count: 1, minLines: 5, maxLines: 5, seed: 1 }, 0);
  const empty = await render({ ...plan, lines: 0 });
  assert.equal(empty.bytes.length, 0);
  assert.equal(empty.stats.sha256, createHash('sha256').digest('hex'));
  const open = await render({ ...plan, finalNewline: false, eol: LineEnding.lf });
  assert.notEqual(open.bytes.at(-1), 10);
  assert.equal(open.bytes.toString('utf8').split('\n').length, 5);
  const closed = await render({ ...plan, finalNewline: true, eol: LineEnding.crlf });
  assert.ok(closed.bytes.toString('utf8').endsWith('\r\n'));
  assert.equal(countLinesReference(closed.bytes), 5);
});

test('CRLF files terminate every line with \\r\\n and count the same as LF', async () => {
  const plan = planFile({ ...base, count: 1, minLines: 200, maxLines: 200, seed: 5 }, 0);
  const crlf = await render({ ...plan, eol: LineEnding.crlf, finalNewline: true });
  const lf = await render({ ...plan, eol: LineEnding.lf, finalNewline: true });
  const text = crlf.bytes.toString('utf8');
  assert.equal(text.split('\r\n').length - 1, 200);
  assert.equal(text.replace(/\r\n/g, '').includes('\n'), false);
  assert.equal(countLinesReference(crlf.bytes), countLinesReference(lf.bytes));
});

test('the same plan gives the same bytes, and another seed different ones', async () => {
  const options = { ...base, count: 5, minLines: 100, maxLines: 300, seed: 77 };
  const first = await Promise.all(
    [...planFiles(options)].map(async (plan) => (await render(plan)).stats.sha256),
  );
  const again = await Promise.all(
    [...planFiles(options)].map(async (plan) => (await render(plan)).stats.sha256),
  );
  const other = await Promise.all(
    [...planFiles({ ...options, seed: 78 })].map(async (plan) => (await render(plan)).stats.sha256),
  );
  assert.deepEqual(first, again);
  assert.equal(
    first.some((hash, i) => hash === other[i]),
    false,
  );
});

test('rows read like an accounting export: header, dates, client code, accents, Brazilian amounts', () => {
  const plan = planFile({ ...base, count: 1, minLines: 2000, maxLines: 2000, seed: 3 }, 0);
  const lines = [...generateLines(plan)];
  assert.equal(lines.length, 2000);
  assert.match(lines[0] as string, /^[a-zçãéíóú/ ]+(;[a-zçãéíóú/ .]+){5}$/);
  const rows = lines.slice(1).filter((line) => line !== '');
  for (const row of rows) {
    assert.match(row, /^\d{4}-\d{2}-\d{2};CLI-\d{4};[A-Z]+ \d{6};.+;-?\d{1,3}(\.\d{3})*,\d{2};[^;]+$/, row);
    assert.ok(row.includes(plan.client.code));
  }
  assert.ok(
    rows.some((row) => /[áâãçéêíóôõú]/i.test(row)),
    'some descriptions carry accents',
  );
  assert.ok(
    rows.some((row) => row.includes('"')),
    'some descriptions are quoted because they hold a ;',
  );
});

test('no line is longer than maxLineBytes, which part sizing relies on', () => {
  for (const plan of planFiles({ ...base, count: 20, minLines: 2000, maxLines: 2000, seed: 11 })) {
    for (const line of generateLines(plan)) {
      assert.ok(Buffer.byteLength(`${line}\r\n`) <= maxLineBytes, line);
    }
  }
});

test('the stream hands over bounded chunks, so memory does not grow with the file', async () => {
  const plan = planFile({ ...base, count: 1, minLines: 50_000, maxLines: 50_000, seed: 8 }, 0);
  const { chunks, bytes } = await render(plan, 16 * 1024);
  assert.ok(chunks.length > 100);
  // a chunk stops at the first line past the target; UTF-8 accents add at most 2× per character
  for (const chunk of chunks) assert.ok(chunk.length <= 2 * (16 * 1024 + maxLineBytes), `${chunk.length}`);
  assert.equal(countLinesReference(bytes), 50_000);
});

test('amounts are formatted as Brazilian reais', () => {
  const cases: [number, string][] = [
    [0, '0,00'],
    [5, '0,05'],
    [99, '0,99'],
    [100, '1,00'],
    [123_456, '1.234,56'],
    [-100_000_001, '-1.000.000,01'],
    [99_999_999, '999.999,99'],
  ];
  for (const [cents, text] of cases) assert.equal(formatAmount(cents), text);
});

test('a short run still includes an empty file and a file without a final newline', () => {
  const plans = [...planFiles({ ...base, count: 3, minLines: 0, maxLines: 100, seed: 99 })];
  assert.equal(plans[1]?.lines, 0);
  assert.equal(plans[2]?.finalNewline, plans[2]?.lines === 0);
  const positive = [...planFiles({ ...base, count: 3, minLines: 10, maxLines: 100, seed: 99 })];
  assert.ok(positive.every((plan) => plan.lines >= 10 && plan.lines <= 100));
  assert.equal(positive[2]?.finalNewline, false);
});
