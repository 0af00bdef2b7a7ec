// The function image's recipe, stated once: the daemonless build
// (publish.ts) assembles exactly this, the Dockerfile restates it for
// `docker build` (dockerfile.test.ts fails when the two differ), and the
// functions up deploys (provision/resources/function.ts, migration.ts) name
// its entry points and files from here. Plain data, so provisioning reads it
// without loading the builder.

// The Lambda Node.js base image, by tag: its Node.js major must match the
// bundle's target (bundle.ts nodeTarget) and the Dockerfile's FROM. The digest
// the tag resolves to is logged on every publish; pin one by appending
// @sha256:... (refresh: `crane digest public.ecr.aws/lambda/nodejs:24`).
export const baseImage = 'public.ecr.aws/lambda/nodejs:24';

export const taskRoot = '/var/task';
// Where the image carries the RDS CA bundle; DB_CA_FILE points at it.
export const rdsCaBundlePath = `${taskRoot}/rds-global-bundle.pem`;
export const rdsCaBundleUrl = 'https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem';

export const imageEnv = {
  // The function verifies PostgreSQL's certificate against this bundle. The
  // Node.js 20+ runtimes no longer load Amazon's CA file (/var/runtime/ca-cert.pem)
  // unless NODE_EXTRA_CA_CERTS names it, so the image brings its own.
  DB_CA_FILE: rdsCaBundlePath,
  // stack traces point into the TypeScript sources through index.mjs.map
  NODE_OPTIONS: '--enable-source-maps',
} as const;

// The entry points of handler.ts in the bundle (index.mjs). The image's CMD is
// the SQS handler; the flush and migration functions run the same image with
// ImageConfig.Command naming theirs, so one build serves all three and they
// cannot diverge.
export const imageCmd = ['index.handler'] as const;
export const flushCmd = ['index.flushHandler'] as const;
export const migrateCmd = ['index.migrateHandler'] as const;
