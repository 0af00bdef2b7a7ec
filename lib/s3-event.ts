// The S3 event notification record, as S3 writes it ("Event message
// structure", S3 user guide): built by the local emulator for every upload and
// by ops/audit.ts for the objects it re-enqueues, so both reach the
// function in exactly the shape, and with exactly the key encoding, that S3
// itself sends. Written by hand: no library builds these records.

// S3 writes keys in event records form-URL-encoded: a space becomes '+', '/'
// stays, letters, digits and - _ . * stay, every other byte of the UTF-8 key
// becomes %XX (uppercase), so a literal '+' arrives as %2B.
export function encodeEventKey(key: string): string {
  let encoded = '';
  for (const byte of Buffer.from(key, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.*/]/.test(c)) encoded += c;
    else if (c === ' ') encoded += '+';
    else encoded += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

export interface ObjectCreatedEvent {
  region: string;
  eventName: string;
  eventTime: Date;
  bucket: string;
  // the key as stored (decoded); encoded here as S3 does
  key: string;
  size: number;
  eTag: string;
  versionId?: string | undefined;
  sequencer: string;
  requestId: string;
  sourceIp: string;
  configurationId: string;
  // who caused the event (userIdentity.principalId), e.g. AWS:AIDA...
  principalId: string;
  // the x-amz-id-2 response element
  hostId: string;
}

export function buildObjectCreatedEvent(event: ObjectCreatedEvent) {
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: event.region,
        eventTime: event.eventTime.toISOString(),
        eventName: event.eventName,
        userIdentity: { principalId: event.principalId },
        requestParameters: { sourceIPAddress: event.sourceIp },
        responseElements: { 'x-amz-request-id': event.requestId, 'x-amz-id-2': event.hostId },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: event.configurationId,
          bucket: {
            name: event.bucket,
            ownerIdentity: { principalId: event.principalId },
            arn: `arn:aws:s3:::${event.bucket}`,
          },
          object: {
            key: encodeEventKey(event.key),
            size: event.size,
            eTag: event.eTag.replace(/"/g, ''),
            ...(event.versionId === undefined ? {} : { versionId: event.versionId }),
            sequencer: event.sequencer,
          },
        },
      },
    ],
  };
}
