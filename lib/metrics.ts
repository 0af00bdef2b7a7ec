// Names shared by the function's Embedded Metric Format output and the alarms
// and dashboard that read it, so the two cannot drift apart.
export const metricNamespace = 'AdaLinecount';

// Powertools adds a `service` dimension to every metric; its value is `${app}-${stage}`.
export const serviceDimension = 'service';

export const MetricName = {
  filesCounted: 'FilesCounted',
  linesCounted: 'LinesCounted',
  duplicatesSkipped: 'DuplicatesSkipped',
  objectsSkipped: 'ObjectsSkipped',
  malformedMessages: 'MalformedMessages',
  rowsFlushed: 'RowsFlushed',
  flushLatency: 'FlushLatency',
  flushFailures: 'FlushFailures',
  rowsQuarantined: 'RowsQuarantined',
  oldestBufferedAge: 'OldestBufferedAge',
  bufferBacklog: 'BufferBacklog',
} as const;
export type MetricName = (typeof MetricName)[keyof typeof MetricName];

export const MetricUnit = {
  [MetricName.filesCounted]: 'Count',
  [MetricName.linesCounted]: 'Count',
  [MetricName.duplicatesSkipped]: 'Count',
  [MetricName.objectsSkipped]: 'Count',
  [MetricName.malformedMessages]: 'Count',
  [MetricName.rowsFlushed]: 'Count',
  [MetricName.flushLatency]: 'Milliseconds',
  [MetricName.flushFailures]: 'Count',
  [MetricName.rowsQuarantined]: 'Count',
  [MetricName.oldestBufferedAge]: 'Seconds',
  [MetricName.bufferBacklog]: 'Count',
} as const satisfies Record<MetricName, string>;

export function serviceName(app: string, stage: string): string {
  return `${app}-${stage}`;
}
