import { UsageError } from '../../lib/errors.ts';
import { parseFlags } from '../../lib/flags.ts';
import { Action } from '../../lib/reconcile.ts';
import { ExitCode, runCli } from '../../provision/cli.ts';
import { provisionStack } from '../../provision/up.ts';
import { teardownStack } from '../../teardown/down.ts';
import { createMigrationTarget } from '../support/migration.ts';
import {
  checkMotoGaps,
  createBoundary,
  findMoto,
  motoContext,
  motoProvisionOptions,
  motoStage,
  motoTeardownOptions,
  requireMoto,
} from '../support/moto.ts';

// Fresh ups in a row against moto (MOTO_URL), each in a stage of its own: a
// plan of the missing stack, the up, a plan that must show zero changes, and a
// down. A fresh up used to fail most of the time on a race between two reads of
// the missing topic; the suite runs one, this runs many.
//   MOTO_URL=http://127.0.0.1:5000 npx tsx test/moto/fresh-ups.ts [--count 20]

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { count: { type: 'string' } });
  const count = Number(flags.count ?? '20');
  if (!Number.isInteger(count) || count < 1 || count > 99) {
    throw new UsageError(`--count ${flags.count} must be a whole number from 1 to 99`);
  }
  const url = requireMoto(await findMoto('plain'));
  await checkMotoGaps(url);
  await createBoundary(url);
  // the migration function's invocations run here (test/support/moto.ts)
  const migration = await createMigrationTarget('fresh');

  const step = async (stage: string, what: 'plan' | 'up' | 'down') => {
    const run = await motoContext(url, { stage, mode: what === 'plan' ? 'plan' : 'apply', migration });
    try {
      if (what === 'down') return (await teardownStack(run.ctx, motoTeardownOptions)).changes;
      return (await provisionStack(run.ctx, motoProvisionOptions(run.ctx))).changes;
    } finally {
      run.close();
    }
  };

  const failures: string[] = [];
  const durations: number[] = [];
  for (let i = 1; i <= count; i++) {
    const stage = motoStage(`u${i}`);
    const started = performance.now();
    try {
      await step(stage, 'plan');
      await step(stage, 'up');
      const drift = (await step(stage, 'plan')).filter((c) => c.action !== Action.unchanged);
      if (drift.length > 0) throw new Error(`the plan after up has ${drift.length} changes`);
      const ms = performance.now() - started;
      durations.push(ms);
      process.stdout.write(`${i}/${count} ${stage}: ok in ${Math.round(ms)} ms\n`);
    } catch (error) {
      failures.push(`${stage}: ${(error as Error).message}`);
      process.stdout.write(`${i}/${count} ${stage}: FAILED ${(error as Error).message}\n`);
    } finally {
      await step(stage, 'down').catch((error: unknown) => {
        failures.push(`${stage} down: ${(error as Error).message}`);
      });
    }
  }
  await migration.drop();
  durations.sort((a, b) => a - b);
  const median = durations[Math.floor(durations.length / 2)] ?? 0;
  process.stdout.write(
    `${durations.length}/${count} fresh ups succeeded (plan, up, zero-change plan); median ${Math.round(median)} ms\n`,
  );
  for (const failure of failures) process.stdout.write(`  ${failure}\n`);
  return failures.length === 0 ? ExitCode.ok : ExitCode.failed;
}

await runCli(() => main(process.argv.slice(2)));
