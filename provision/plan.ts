import { Action, type Change, show } from '../lib/reconcile.ts';
import type { CostEstimate } from './cost.ts';

const symbols: Record<Action, string> = {
  [Action.create]: '+',
  [Action.update]: '~',
  [Action.unchanged]: '=',
  [Action.delete]: '-',
  [Action.absent]: ' ',
};

export function countActions(changes: readonly Change[]): Record<Action, number> {
  const counts = { create: 0, update: 0, unchanged: 0, delete: 0, absent: 0 } as Record<Action, number>;
  for (const change of changes) counts[change.action] += 1;
  return counts;
}

export function hasChanges(changes: readonly Change[]): boolean {
  return changes.some(
    (c) => c.action === Action.create || c.action === Action.update || c.action === Action.delete,
  );
}

// One line per resource, in the order the run visits them; updates list each
// field as old → new.
export function renderChanges(changes: readonly Change[]): string {
  const lines: string[] = [];
  for (const change of changes) {
    lines.push(`${symbols[change.action]} ${change.action.padEnd(9)} ${change.kind} ${change.name}`);
    for (const field of change.fields ?? []) {
      lines.push(`      ${field.field}: ${show(field.from)} → ${show(field.to)}`);
    }
  }
  const counts = countActions(changes);
  lines.push(
    `${counts.create} to create, ${counts.update} to update, ${counts.unchanged} unchanged` +
      (counts.delete ? `, ${counts.delete} to delete` : ''),
  );
  return lines.join('\n');
}

export function renderCost(cost: CostEstimate): string {
  const width = Math.max(...cost.lines.map((l) => l.item.length));
  const lines = cost.lines.map(
    (l) =>
      `  ${l.item.padEnd(width)}  ${l.monthlyUsd === undefined ? '      ?' : `$${l.monthlyUsd.toFixed(2).padStart(6)}`}  ${l.basis}`,
  );
  return [
    `Idle monthly cost (estimate, ${cost.region} on-demand prices as of ${cost.pricesAsOf}):`,
    ...lines,
    `  ${'total'.padEnd(width)}  $${cost.totalUsd.toFixed(2).padStart(6)}`,
    `  ${cost.note}`,
  ].join('\n');
}

export function planDocument(mode: 'plan' | 'apply', changes: readonly Change[], cost?: CostEstimate) {
  return {
    mode,
    summary: countActions(changes),
    changes: changes.map((c) => ({ kind: c.kind, name: c.name, action: c.action, fields: c.fields ?? [] })),
    ...(cost === undefined ? {} : { cost }),
  };
}
