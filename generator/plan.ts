import {
  buildKey,
  type Client,
  clientCount,
  type DocumentKind,
  describeClient,
  documentKinds,
  type NameStyle,
} from './names.ts';
import { createRandom, mixSeed } from './random.ts';

// Everything about a file is decided before a byte of it is produced, from the
// run's seed and the file's index alone: the line count goes into the manifest
// whatever happens to the upload, and the same seed gives the same files
// however many uploads run at once.

export const LineEnding = { lf: '\n', crlf: '\r\n' } as const;
export type LineEnding = (typeof LineEnding)[keyof typeof LineEnding];

export interface FilePlan {
  index: number;
  key: string;
  // seeds the line contents
  seed: number;
  lines: number;
  // false: the last line has no terminator, so it counts without a `\n`
  finalNewline: boolean;
  eol: LineEnding;
  // YYYY-MM-DD, the statement date in the name and around which rows are dated
  date: string;
  client: Client;
  document: DocumentKind;
}

interface PlanOptions {
  prefix: string;
  count: number;
  minLines: number;
  maxLines: number;
  seed: number;
  names: NameStyle;
  runId: string;
}

// Shares of unusual files. Empty files and files without a final newline are
// where line counters go wrong (docs/design.md: empty → 0, `a\nb` → 2); Windows
// exports use CRLF, which must count the same as LF.
const fileMix = { empty: 0.08, noFinalNewline: 0.25, crlf: 0.2 } as const;

// Fixed so the same seed gives the same bytes on any day: the sample data is
// dated within the two years from this day.
const firstDay = Date.UTC(2024, 0, 1);
const dayCount = 731;
const dayMs = 86_400_000;

export function planFile(options: PlanOptions, index: number): FilePlan {
  const random = createRandom(mixSeed(options.seed, index));
  // draw every value in a fixed order so one field never shifts another
  const empty = options.minLines === 0 && random.chance(fileMix.empty);
  const drawnLines = random.int(options.minLines, options.maxLines);
  const noFinalNewline = random.chance(fileMix.noFinalNewline);
  const crlf = random.chance(fileMix.crlf);
  const date = new Date(firstDay + random.int(0, dayCount - 1) * dayMs).toISOString().slice(0, 10);
  const client = describeClient(random.int(1, clientCount));
  const document = random.pick(documentKinds);
  const seed = random.uint32();

  let lines = empty ? 0 : drawnLines;
  let finalNewline = !noFinalNewline;
  // With three files or more, the second is always empty (when the range allows
  // it) and the third always lacks its final newline, so even a short run
  // covers both edge cases.
  if (options.count >= 3 && options.minLines === 0 && index === 1) lines = 0;
  if (options.count >= 3 && index === 2 && lines > 0) finalNewline = false;
  if (lines === 0) finalNewline = true;

  const key = buildKey({
    prefix: options.prefix,
    style: options.names,
    runId: options.runId,
    number: index + 1,
    count: options.count,
    date,
    client,
    document,
  });
  return {
    index,
    key,
    seed,
    lines,
    finalNewline,
    eol: crlf ? LineEnding.crlf : LineEnding.lf,
    date,
    client,
    document,
  };
}

export function* planFiles(options: PlanOptions): Generator<FilePlan> {
  for (let index = 0; index < options.count; index++) yield planFile(options, index);
}
