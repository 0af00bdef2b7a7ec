import { relative } from 'node:path';
import { Readable } from 'node:stream';
import { spec, type TestEvent } from 'node:test/reporters';

// The test run's reporter: node:test's own spec reporter for every test, and
// a summary that counts what it leaves out. Node's totals count skipped tests
// only; a suite skipped as a whole (describe(..., { skip: reason })) runs
// none of its tests and shows up in no total, so `skipped 0` could stand
// above a run that left whole files untested. Here every skip is counted and
// listed with its file and reason.

export interface Skip {
  kind: 'suite' | 'test';
  file: string;
  name: string;
  reason: string;
}

// The totals node:test prints once at the end of the run (nesting 0, no file).
const totalLine = /^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) /;

function isTotal(event: TestEvent): boolean {
  return (
    event.type === 'test:diagnostic' &&
    event.data.nesting === 0 &&
    event.data.file === undefined &&
    totalLine.test(event.data.message)
  );
}

function skipOf(event: TestEvent): Skip | undefined {
  if (event.type !== 'test:pass' && event.type !== 'test:fail') return undefined;
  const { skip, details, file, name } = event.data;
  if (skip === undefined || skip === false) return undefined;
  return {
    kind: details.type === 'suite' ? 'suite' : 'test',
    file: file === undefined ? '(no file)' : relative(process.cwd(), file),
    name,
    reason: skip === true ? 'no reason given' : skip,
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function formatSummary(totals: string[], skips: readonly Skip[]): string {
  const suites = skips.filter((s) => s.kind === 'suite').length;
  const tests = skips.length - suites;
  const lines = totals.map((line) =>
    line.startsWith('skipped ') ? `skipped ${plural(tests, 'test')}, ${plural(suites, 'suite')}` : line,
  );
  if (skips.length > 0) {
    lines.push('skipped, with the reason:');
    for (const skip of skips) lines.push(`  ${skip.kind} ${skip.file} › ${skip.name}: ${skip.reason}`);
  }
  return lines.map((line) => `ℹ ${line}\n`).join('');
}

export default async function* summary(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const skips: Skip[] = [];
  const totals: string[] = [];
  async function* forSpec(): AsyncGenerator<TestEvent> {
    for await (const event of source) {
      const skip = skipOf(event);
      if (skip !== undefined) skips.push(skip);
      if (event.type === 'test:diagnostic' && isTotal(event)) {
        totals.push(event.data.message);
        continue;
      }
      yield event;
    }
  }
  for await (const chunk of Readable.from(forSpec()).compose(spec())) yield String(chunk);
  yield formatSummary(totals, skips);
}
