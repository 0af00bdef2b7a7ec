import { isDigest } from './digest.ts';

// An image reference: host[:port]/repository[:tag][@sha256:...]
interface ImageReference {
  host: string;
  repository: string;
  tag?: string;
  digest?: string;
}

class ReferenceError extends Error {
  constructor(reference: string, why: string) {
    super(`invalid image reference ${reference}: ${why} (expected host/repository[:tag][@sha256:...])`);
    this.name = 'ReferenceError';
  }
}

// Repository path components and tags (OCI distribution spec, "Pulling manifests")
const repositoryPattern =
  /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const tagPattern = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export function parseImageReference(reference: string): ImageReference {
  const slash = reference.indexOf('/');
  if (slash <= 0) throw new ReferenceError(reference, 'no registry host');
  const host = reference.slice(0, slash);
  let rest = reference.slice(slash + 1);
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new ReferenceError(reference, `${digest} is not a sha256 digest`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) throw new ReferenceError(reference, `${tag} is not a valid tag`);
  }
  if (!repositoryPattern.test(rest))
    throw new ReferenceError(reference, `${rest} is not a valid repository name`);
  return {
    host,
    repository: rest,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

export function formatImageReference(ref: ImageReference): string {
  return `${ref.host}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

// Registries are HTTPS. Like Docker, which treats localhost registries as
// insecure by default, a loopback host is spoken to over plain HTTP: that is
// the local test registry, never ECR.
export function registryBaseUrl(host: string): string {
  const hostname = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  const loopback = hostname === 'localhost' || hostname === '::1' || /^127\./.test(hostname);
  return `${loopback ? 'http' : 'https'}://${host}`;
}
