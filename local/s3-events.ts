import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import {
  buildObjectCreatedEvent as buildS3Event,
  encodeEventKey,
  type ObjectCreatedEvent,
} from '../lib/s3-event.ts';

export { encodeEventKey };

// The S3 event-notification half that the emulator lacks: the bucket
// notification configuration (parse, render, validate, match) and the event
// records S3 sends. Written from the S3 API reference ("Event message
// structure", "PutBucketNotificationConfiguration"); no library does this.

export const DestinationType = { topic: 'topic', queue: 'queue' } as const;
export type DestinationType = (typeof DestinationType)[keyof typeof DestinationType];

export interface FilterRule {
  name: 'prefix' | 'suffix';
  value: string;
}

export interface Destination {
  id: string;
  type: DestinationType;
  arn: string;
  events: string[];
  filterRules: FilterRule[];
}

export interface NotificationSettings {
  destinations: Destination[];
  // kept and echoed, never delivered to: this emulator has no Lambda or EventBridge
  lambdaFunctions: unknown[];
  eventBridge: boolean;
}

export class NotificationConfigError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'NotificationConfigError';
  }
}

const listElements = new Set([
  'TopicConfiguration',
  'QueueConfiguration',
  'CloudFunctionConfiguration',
  'Event',
  'FilterRule',
]);

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: true,
  isArray: (name) => listElements.has(name),
});

type XmlNode = Record<string, unknown>;

function text(node: XmlNode, name: string): string | undefined {
  const value = node[name];
  return typeof value === 'string' ? value : undefined;
}

function parseRules(entry: XmlNode): FilterRule[] {
  const filter = entry.Filter as XmlNode | undefined;
  const key = filter?.S3Key as XmlNode | undefined;
  const rules = (key?.FilterRule as XmlNode[] | undefined) ?? [];
  const parsed = rules.map((rule) => {
    const name = (text(rule, 'Name') ?? '').toLowerCase();
    if (name !== 'prefix' && name !== 'suffix') {
      throw new NotificationConfigError(
        'InvalidArgument',
        `filter rule name must be prefix or suffix, got ${name}`,
      );
    }
    return { name, value: text(rule, 'Value') ?? '' } as FilterRule;
  });
  for (const name of ['prefix', 'suffix']) {
    if (parsed.filter((rule) => rule.name === name).length > 1) {
      throw new NotificationConfigError(
        'InvalidArgument',
        `Cannot specify more than one ${name} rule in a filter.`,
      );
    }
  }
  return parsed;
}

// S3 generates an Id for an entry saved without one.
let generatedIds = 0;
function entryId(entry: XmlNode): string {
  generatedIds += 1;
  return text(entry, 'Id') ?? `notification-${Date.now().toString(36)}-${generatedIds}`;
}

export function parseNotificationConfiguration(xml: string): NotificationSettings {
  let document: XmlNode;
  try {
    document = parser.parse(xml) as XmlNode;
  } catch (error) {
    throw new NotificationConfigError(
      'MalformedXML',
      `The XML you provided was not well-formed: ${String(error)}`,
    );
  }
  const root = document.NotificationConfiguration;
  if (root === undefined) {
    throw new NotificationConfigError('MalformedXML', 'The root element must be NotificationConfiguration');
  }
  const config = (typeof root === 'object' && root !== null ? root : {}) as XmlNode;
  const destinations: Destination[] = [];
  const read = (element: string, type: DestinationType, arnElement: string) => {
    for (const entry of (config[element] as XmlNode[] | undefined) ?? []) {
      const arn = text(entry, arnElement);
      const events = ((entry.Event as unknown[] | undefined) ?? []).map(String);
      if (arn === undefined || events.length === 0) {
        throw new NotificationConfigError(
          'InvalidArgument',
          `${element} needs ${arnElement} and at least one Event`,
        );
      }
      destinations.push({ id: entryId(entry), type, arn, events, filterRules: parseRules(entry) });
    }
  };
  read('TopicConfiguration', DestinationType.topic, 'Topic');
  read('QueueConfiguration', DestinationType.queue, 'Queue');
  const ids = destinations.map((d) => d.id);
  if (new Set(ids).size !== ids.length) {
    throw new NotificationConfigError('InvalidArgument', 'Configuration Ids must be unique');
  }
  return {
    destinations,
    lambdaFunctions: (config.CloudFunctionConfiguration as unknown[] | undefined) ?? [],
    eventBridge: config.EventBridgeConfiguration !== undefined,
  };
}

const builder = new XMLBuilder({ ignoreAttributes: false, suppressEmptyNode: true });

function renderRules(rules: FilterRule[]) {
  return rules.length === 0
    ? {}
    : { Filter: { S3Key: { FilterRule: rules.map((rule) => ({ Name: rule.name, Value: rule.value })) } } };
}

export function renderNotificationConfiguration(settings: NotificationSettings): string {
  const entries = (type: DestinationType, arnElement: string) =>
    settings.destinations
      .filter((d) => d.type === type)
      .map((d) => ({ Id: d.id, [arnElement]: d.arn, Event: d.events, ...renderRules(d.filterRules) }));
  const body = builder.build({
    NotificationConfiguration: {
      '@_xmlns': 'http://s3.amazonaws.com/doc/2006-03-01/',
      TopicConfiguration: entries(DestinationType.topic, 'Topic'),
      QueueConfiguration: entries(DestinationType.queue, 'Queue'),
      CloudFunctionConfiguration: settings.lambdaFunctions,
      ...(settings.eventBridge ? { EventBridgeConfiguration: '' } : {}),
    },
  }) as string;
  return `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
}

// Filter rules are matched against the key as it appears in the event
// (encoded): S3 asks for a space in a prefix to be written as '+'.
function matchesFilter(rules: readonly FilterRule[], encodedKey: string): boolean {
  return rules.every((rule) =>
    rule.name === 'prefix' ? encodedKey.startsWith(rule.value) : encodedKey.endsWith(rule.value),
  );
}

// 's3:ObjectCreated:*' covers every ObjectCreated:<variant>
export function matchesEvent(configured: readonly string[], eventName: string): boolean {
  const full = `s3:${eventName}`;
  const family = `${full.slice(0, full.lastIndexOf(':'))}:*`;
  return configured.some((event) => event === full || event === family);
}

export function selectDestinations(
  settings: NotificationSettings | undefined,
  eventName: string,
  encodedKey: string,
): Destination[] {
  return (settings?.destinations ?? []).filter(
    (d) => matchesEvent(d.events, eventName) && matchesFilter(d.filterRules, encodedKey),
  );
}

function eventsIntersect(x: string, y: string): boolean {
  const covers = (wide: string, narrow: string) => wide.endsWith('*') && narrow.startsWith(wide.slice(0, -1));
  return x === y || covers(x, y) || covers(y, x);
}

// Two entries overlap when they share an event and their filters can match
// the same key; S3 rejects such a configuration ("Configurations overlap").
export function findOverlap(destinations: readonly Destination[]): [string, string] | undefined {
  const rule = (d: Destination, name: string) => d.filterRules.find((r) => r.name === name)?.value ?? '';
  const compatible = (a: string, b: string, starts: boolean) =>
    starts ? a.startsWith(b) || b.startsWith(a) : a.endsWith(b) || b.endsWith(a);
  for (let i = 0; i < destinations.length; i++) {
    for (let j = i + 1; j < destinations.length; j++) {
      const a = destinations[i] as Destination;
      const b = destinations[j] as Destination;
      const sharedEvent = a.events.some((x) => b.events.some((y) => eventsIntersect(x, y)));
      if (
        sharedEvent &&
        compatible(rule(a, 'prefix'), rule(b, 'prefix'), true) &&
        compatible(rule(a, 'suffix'), rule(b, 'suffix'), false)
      ) {
        return [a.id, b.id];
      }
    }
  }
  return undefined;
}

// AWS writes the sequencer as uppercase hex; for one key a later event has a
// larger value. Seeded from the clock in microseconds, so values keep
// increasing across emulator restarts (a persistent Redis dedupe store
// never sees an older sequencer for a newer upload).
export class Sequencer {
  private last = 0n;
  next(): string {
    const now = BigInt(Date.now()) * 1000n;
    this.last = now > this.last ? now : this.last + 1n;
    return this.last.toString(16).toUpperCase().padStart(18, '0');
  }
}

// The record itself is built in lib/s3-event.ts, shared with ops/audit.ts.
export type ObjectCreated = Omit<ObjectCreatedEvent, 'principalId' | 'hostId'>;

// Fixed principal ids: the emulator has no IAM; the shape matches AWS's.
const localPrincipal = 'AWS:LOCALEMULATOR';

export function buildObjectCreatedEvent(event: ObjectCreated) {
  return buildS3Event({ ...event, principalId: localPrincipal, hostId: 'local' });
}

export function buildTestEvent(bucket: string, requestId: string, time = new Date()) {
  return {
    Service: 'Amazon S3',
    Event: 's3:TestEvent',
    Time: time.toISOString(),
    Bucket: bucket,
    RequestId: requestId,
    HostId: 'local',
  };
}

// S3 validates that it may deliver to each destination when the configuration
// is saved: the topic or queue policy must allow s3.amazonaws.com to
// publish/send, and a SourceArn condition (when present) must match the bucket.
export function policyAllowsS3(policyJson: string | undefined, action: string, bucketArn: string): boolean {
  if (policyJson === undefined || policyJson === '') return false;
  let policy: { Statement?: unknown };
  try {
    policy = JSON.parse(policyJson) as { Statement?: unknown };
  } catch {
    return false;
  }
  const statements = (Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement]) as Record<
    string,
    unknown
  >[];
  const list = (value: unknown): string[] =>
    Array.isArray(value) ? value.map(String) : value === undefined ? [] : [String(value)];
  const glob = (pattern: string, value: string) =>
    new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    ).test(value);
  return statements.some((statement) => {
    if (statement?.Effect !== 'Allow') return false;
    const principal = statement.Principal as { Service?: unknown } | string | undefined;
    const services =
      principal === '*'
        ? ['s3.amazonaws.com']
        : list(typeof principal === 'object' ? principal.Service : undefined);
    if (!services.includes('s3.amazonaws.com') && !list((principal as { AWS?: unknown })?.AWS).includes('*'))
      return false;
    const service = action.split(':')[0] ?? '';
    const actions = list(statement.Action).map((a) => a.toLowerCase());
    if (!actions.some((a) => a === '*' || a === `${service}:*` || a === action.toLowerCase())) return false;
    const condition = (statement.Condition ?? {}) as Record<string, Record<string, unknown>>;
    for (const [operator, entries] of Object.entries(condition)) {
      for (const [key, expected] of Object.entries(entries ?? {})) {
        if (key.toLowerCase() !== 'aws:sourcearn') continue;
        const match =
          operator.toLowerCase().startsWith('arnequals') || operator.toLowerCase() === 'stringequals'
            ? list(expected).includes(bucketArn)
            : list(expected).some((pattern) => glob(pattern, bucketArn));
        if (!match) return false;
      }
    }
    return true;
  });
}
