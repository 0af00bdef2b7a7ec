import { canonical, type FieldChange, sameValue } from '../lib/reconcile.ts';

// IAM and resource policies as plain objects. A document read back from AWS is
// compared after normalising: IAM returns documents URL-encoded (RFC 3986,
// GetRole/GetRolePolicy), services may reorder keys, and a one-element list
// may come back as a bare string.
export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: Record<string, string | string[]> | '*';
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

const listKeys = new Set(['Action', 'NotAction', 'Resource', 'NotResource']);

function sortedList(value: unknown): unknown {
  const list = Array.isArray(value) ? value : [value];
  return [...list].sort();
}

function normalizeStatement(statement: Record<string, unknown>): unknown {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(statement)) {
    if (listKeys.has(key)) out[key] = sortedList(value);
    else if (key === 'Principal' && value !== null && typeof value === 'object') {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, sortedList(v)]));
    } else if (key === 'Condition' && value !== null && typeof value === 'object') {
      out[key] = Object.fromEntries(
        Object.entries(value as Record<string, Record<string, unknown>>).map(([operator, entries]) => [
          operator,
          Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, sortedList(v)])),
        ]),
      );
    } else out[key] = value;
  }
  return out;
}

// Accepts an object, a JSON string, or IAM's URL-encoded JSON string.
export function parsePolicy(document: unknown): unknown {
  if (document === undefined || document === null) return undefined;
  if (typeof document !== 'string') return document;
  const text = document.trimStart().startsWith('{') ? document : decodeURIComponent(document);
  return JSON.parse(text);
}

export function normalizePolicy(document: unknown): unknown {
  const parsed = parsePolicy(document);
  if (parsed === undefined || parsed === null || typeof parsed !== 'object') return parsed;
  const { Statement, ...rest } = parsed as Record<string, unknown>;
  // not an IAM-style document (an ECR lifecycle policy): key order is all that varies
  if (Statement === undefined) return canonical(parsed);
  const statements = (Array.isArray(Statement) ? Statement : [Statement]).map((s) =>
    normalizeStatement(s as Record<string, unknown>),
  );
  return canonical({ ...rest, Statement: statements });
}

export function samePolicy(a: unknown, b: unknown): boolean {
  return sameValue(normalizePolicy(a), normalizePolicy(b));
}

// A document of the given statements, as this stack writes its policies.
export function policyDocument(...Statement: PolicyStatement[]): PolicyDocument {
  return { Version: '2012-10-17', Statement };
}

export function allow(Sid: string, Action: string | string[], Resource: string | string[]): PolicyStatement {
  return { Sid, Effect: 'Allow', Action, Resource };
}

// The field, when its policy differs from the live one once both are normalised.
export function policyDrift(field: string, to: unknown, from: unknown): FieldChange[] {
  return samePolicy(to, from) ? [] : [{ field, from, to }];
}
