import { type FieldChange, missingTags } from '../lib/reconcile.ts';

export type Tags = Record<string, string>;

export function tagDrift(desired: Tags, actual: Tags): FieldChange[] {
  const missing = missingTags(desired, actual);
  if (Object.keys(missing).length === 0) return [];
  const from = Object.fromEntries(Object.keys(missing).map((key) => [key, actual[key]]));
  return [{ field: 'tags', from, to: missing }];
}

export function toTagList(tags: Tags): { Key: string; Value: string }[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

export function fromTagList(
  list: readonly { Key?: string | undefined; Value?: string | undefined }[] | undefined,
): Tags {
  return Object.fromEntries((list ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}
