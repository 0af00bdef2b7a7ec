import { createProgressLine } from '../lib/cli.ts';
import type { GenerateProgress } from './generate.ts';

// What a person sees while files upload: on a terminal one bar redrawn in
// place; in a log or CI one plain line per finished file; with --json nothing
// (stdout carries only the summary).

export const ProgressMode = { bar: 'bar', lines: 'lines', silent: 'silent' } as const;
export type ProgressMode = (typeof ProgressMode)[keyof typeof ProgressMode];

interface ProgressReporter {
  update(progress: GenerateProgress): void;
  finish(): void;
}

interface Output {
  write(text: string): unknown;
  columns?: number;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '--:--';
  const seconds = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

// Lines are known for every file before the first byte, so the share of lines
// generated measures the whole run; each file also counts as one unit so a run
// of empty files still moves.
function measureFraction(progress: GenerateProgress): number {
  const total = progress.linesTotal + progress.filesTotal;
  return total === 0 ? 1 : Math.min(1, (progress.lines + progress.filesDone) / total);
}

function renderBar(progress: GenerateProgress, elapsedMs: number, width: number): string {
  const fraction = measureFraction(progress);
  const rate = elapsedMs > 0 ? (progress.bytes * 1000) / elapsedMs : 0;
  const eta = fraction > 0 ? (elapsedMs * (1 - fraction)) / fraction : Number.POSITIVE_INFINITY;
  const text = ` ${progress.filesDone}/${progress.filesTotal} files  ${formatBytes(progress.bytes)}  ${formatBytes(rate)}/s  ETA ${formatDuration(eta)}`;
  const barWidth = Math.max(10, Math.min(40, width - text.length - 3));
  const filled = Math.round(fraction * barWidth);
  return `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]${text}`;
}

// at most this often, so a fast run does not spend its time drawing
const redrawMs = 100;

export function createProgressReporter(
  mode: ProgressMode,
  output: Output,
  now: () => number = Date.now,
): ProgressReporter {
  const started = now();
  let lastDraw = 0;
  let last: GenerateProgress | undefined;
  // the bar mode is chosen only on a terminal: the line is redrawn in place
  const line = createProgressLine({ write: (text) => output.write(text), isTTY: true }, { now });
  const draw = () => {
    if (last === undefined) return;
    line.update(renderBar(last, now() - started, output.columns || 80));
    lastDraw = now();
  };
  return {
    update(progress) {
      last = progress;
      if (mode === ProgressMode.bar) {
        if (now() - lastDraw >= redrawMs || progress.filesDone === progress.filesTotal) draw();
      } else if (mode === ProgressMode.lines && progress.completed !== undefined) {
        const entry = progress.completed;
        output.write(
          `[${progress.filesDone}/${progress.filesTotal}] uploaded ${entry.key} (${entry.lines} lines, ${formatBytes(entry.bytes)})\n`,
        );
      }
    },
    finish() {
      if (mode !== ProgressMode.bar || last === undefined) return;
      draw();
      line.done({ keep: true });
    },
  };
}
