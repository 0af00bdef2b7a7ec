import { createHash } from 'node:crypto';

// Content addresses: every index, manifest, config and layer is named by the
// sha256 of its exact bytes (OCI image spec, "Digests").

export class DigestMismatchError extends Error {
  readonly expected: string;
  readonly actual: string;
  constructor(what: string, expected: string, actual: string) {
    super(
      `digest mismatch for ${what}: expected ${expected}, got ${actual} (the download is corrupt or was tampered with; retry, and if it persists do not use this source)`,
    );
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

const digestPattern = /^sha256:[0-9a-f]{64}$/;

export function computeDigest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function isDigest(value: string): boolean {
  return digestPattern.test(value);
}

export function verifyDigest(bytes: Uint8Array, expected: string, what: string): void {
  if (!isDigest(expected)) {
    throw new DigestMismatchError(
      what,
      expected,
      '(an unsupported digest algorithm: only sha256 is accepted)',
    );
  }
  const actual = computeDigest(bytes);
  if (actual !== expected) throw new DigestMismatchError(what, expected, actual);
}
