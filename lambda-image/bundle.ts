import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

// The function's bundle: one ESM file plus its source map, for the Node.js of
// the Lambda base image. Everything is bundled, the AWS SDK included, so the
// function runs the SDK versions the tests ran, not the copy the runtime ships.

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// Must match the base image's Node.js major (Dockerfile FROM, lambda-image/publish.ts baseImage).
export const nodeTarget = 'node24';
export const defaultEntry = 'lambda-image/handler.ts';
export const defaultOutdir = 'dist/lambda';
export const bundleFileName = 'index.mjs';
// Lambda resolves `index.handler`, `index.flushHandler` and
// `index.migrateHandler` against these exports.
const requiredExports = ['flushHandler', 'handler', 'migrateHandler'] as const;

// CommonJS dependencies (pg, ioredis) call require(); an ESM bundle has none, so
// the banner creates one. The alias avoids clashing with a bundled `createRequire`.
const requireBanner =
  "import { createRequire as __bundleCreateRequire } from 'node:module';\n" +
  'const require = __bundleCreateRequire(import.meta.url);';

interface BundleOptions {
  // relative to the project root
  entry?: string;
  outdir?: string;
  // write the files to outdir (the Docker build and `npm run bundle`), or only return them
  write?: boolean;
}

interface BundleFile {
  // file name inside outdir
  name: string;
  contents: Uint8Array;
}

export interface Bundle {
  files: BundleFile[];
  exports: string[];
}

class BundleError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BundleError';
  }
}

export async function bundleFunction(options: BundleOptions = {}): Promise<Bundle> {
  const entry = options.entry ?? defaultEntry;
  const outdir = options.outdir ?? defaultOutdir;
  const outfile = join(outdir, bundleFileName);
  let result: Awaited<ReturnType<typeof build>>;
  try {
    result = await build({
      // Paths in the source map and metafile are relative to this directory, so
      // the bytes do not depend on where the repository is checked out.
      absWorkingDir: projectRoot,
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: nodeTarget,
      minify: true,
      // class and function names survive minification: error names and stack traces stay readable in logs
      keepNames: true,
      sourcemap: 'linked',
      sourcesContent: true,
      legalComments: 'none',
      // ESM-first packages resolve to their ESM build
      mainFields: ['module', 'main'],
      banner: { js: requireBanner },
      // pg's optional native binding, never installed; pg requires it only when asked to
      external: ['pg-native'],
      metafile: true,
      write: false,
      logLevel: 'silent',
    });
  } catch (error) {
    throw new BundleError(
      `cannot bundle ${entry}: ${error instanceof Error ? error.message : String(error)} (fix the build errors above, or check the entry exists)`,
      { cause: error },
    );
  }
  // metafile paths are relative to absWorkingDir, with forward slashes
  const outputKey = relative(projectRoot, resolve(projectRoot, outfile)).split('\\').join('/');
  const exports = [...(result.metafile?.outputs[outputKey]?.exports ?? [])].sort();
  const missing = requiredExports.filter((name) => !exports.includes(name));
  if (missing.length > 0) {
    throw new BundleError(
      `${entry} does not export ${missing.join(', ')} (the image runs index.handler, index.flushHandler and index.migrateHandler)`,
    );
  }
  const absoluteOutdir = resolve(projectRoot, outdir);
  const files = (result.outputFiles ?? [])
    .map((file) => ({ name: relative(absoluteOutdir, file.path), contents: file.contents }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (options.write) {
    await mkdir(absoluteOutdir, { recursive: true });
    for (const file of files) await writeFile(join(absoluteOutdir, file.name), file.contents);
  }
  return { files, exports };
}

async function main(): Promise<void> {
  const bundle = await bundleFunction({ write: true });
  for (const file of bundle.files) {
    console.log(`${join(defaultOutdir, file.name)}  ${file.contents.byteLength} bytes`);
  }
  console.log(`exports: ${bundle.exports.join(', ')}`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
