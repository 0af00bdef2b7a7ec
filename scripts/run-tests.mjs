// The test run: `npm run test:unit`, or `node scripts/run-tests.mjs [path-substring ...]`
// for the test files whose path contains one of the substrings.
//
// The files are listed with fs.globSync rather than left to the runner's own
// discovery: its default patterns also take every .ts file under a test/
// folder and every test-*.ts, which here are support modules, not tests.
// What else this script adds: the summary reporter that counts skipped suites
// (scripts/test-summary.ts), the tsx loader (a few modules use TypeScript
// syntax that Node's type stripping does not remove, such as constructor
// parameter properties), and TEST_CONCURRENCY (default 3 files at once).
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';

const filters = process.argv.slice(2);
const skipped = new Set(['node_modules', '.git', 'dist', '.ada']);
const files = globSync('**/*.test.ts', { exclude: (name) => skipped.has(name) })
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ') || '**/*.test.ts'}`);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '3';
const reporter = new URL('./test-summary.ts', import.meta.url).pathname;
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-timeout=300000',
    `--test-reporter=${reporter}`,
    '--test-reporter-destination=stdout',
    ...files,
  ],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
