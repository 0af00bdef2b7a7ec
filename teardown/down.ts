import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { paginateGetResources } from '@aws-sdk/client-resource-groups-tagging-api';
import { createClients, destroyClients } from '../lib/clients.ts';
import { loadDeployConfig } from '../lib/config.ts';
import { describeError, UsageError } from '../lib/errors.ts';
import { parseFlags } from '../lib/flags.ts';
import { graph } from '../lib/graph.ts';
import { arn } from '../lib/names.ts';
import type { Change, Ctx } from '../lib/reconcile.ts';
import { confirm, createConsoleLog, ExitCode, isInteractive, runCli } from '../provision/cli.ts';
import { planDocument, renderChanges } from '../provision/plan.ts';
import { deleteAlarms } from '../provision/resources/alarms.ts';
import { deleteAlerts } from '../provision/resources/alerts.ts';
import { deleteBucket } from '../provision/resources/bucket.ts';
import { type CacheOptions, deleteCache } from '../provision/resources/cache.ts';
import { deleteDashboard } from '../provision/resources/dashboard.ts';
import { type DatabaseOptions, deleteDatabase } from '../provision/resources/database.ts';
import { deleteEventSource } from '../provision/resources/event-source.ts';
import { deleteFunction } from '../provision/resources/function.ts';
import { deleteGithubProvider } from '../provision/resources/github-oidc.ts';
import { deleteLogGroup } from '../provision/resources/log-group.ts';
import { deleteNetwork, type NetworkOptions } from '../provision/resources/network.ts';
import { deleteNotification } from '../provision/resources/notification.ts';
import { deleteDeadLetterQueue, deleteQueue } from '../provision/resources/queue.ts';
import { deleteRepository } from '../provision/resources/repository.ts';
import { deleteRole } from '../provision/resources/role.ts';
import { deleteSchedule } from '../provision/resources/schedule.ts';
import { deleteSubscription } from '../provision/resources/subscription.ts';
import { deleteTopic } from '../provision/resources/topic.ts';
import { fromTagList } from '../provision/tags.ts';
import { createContext, runStack, type StepObserver } from '../provision/up.ts';

const usage = `Usage: npx tsx teardown/down.ts [options]

Deletes every AWS resource of the stack (APP, STAGE, AWS_REGION from the
environment), each once what depends on it is gone, then lists anything still
tagged with the stack. Running it again does nothing.

Options:
  --yes                  do not ask for confirmation (required when not on a terminal)
  --force                turn off the database's deletion protection if it is on
                         (without it, a protected database stops the teardown)
  --final-snapshot       keep a final snapshot of the database (the default)
  --skip-final-snapshot  delete the database without a final snapshot
  --json                 print what was deleted and what remains as JSON on stdout
  --help                 show this help`;

export interface TeardownOptions {
  force: boolean;
  finalSnapshot: boolean;
  // tests shorten the long waits
  network?: NetworkOptions;
  cache?: CacheOptions;
  database?: DatabaseOptions;
  // when each step starts and ends (bench/provision.ts)
  observe?: StepObserver;
}

export interface Leftover {
  arn: string;
  tags: Record<string, string>;
}

// The reverse of provisionStack, as a graph: each step names the steps that
// must be done before it, so the cache's and the database's deletions and
// the wait for the deleted functions' network interfaces run side by side.
// Each delete finds first and does nothing when the resource is gone, so an
// interrupted teardown is finished by running it again, and a second run
// makes no change.
export function teardownSteps(ctx: Ctx, options: TeardownOptions) {
  const { names, identity } = ctx;
  const queueArn = arn(identity, 'sqs', names.queue);
  return (
    graph<Ctx>()
      .step('dashboard', [], (_, c) => deleteDashboard(c))
      .step('alarms', [], (_, c) => deleteAlarms(c))
      // the alarms' actions name its topic
      .step('alerts', ['alarms'], (_, c) => deleteAlerts(c))
      .step('schedule', [], (_, c) => deleteSchedule(c))
      // the mapping stops polling before the queue goes
      .step('eventSource', [], (_, c) => deleteEventSource(c, { functionName: names.function, queueArn }))
      .step('flushFunction', ['schedule'], (_, c) => deleteFunction(c, names.flushFunction))
      .step('function', ['eventSource'], (_, c) => deleteFunction(c, names.function))
      .step('migrateFunction', [], (_, c) => deleteFunction(c, names.migrateFunction))
      .step('migrateLogGroup', ['migrateFunction'], (_, c) => deleteLogGroup(c, names.migrateLogGroup))
      .step('flushLogGroup', ['flushFunction'], (_, c) => deleteLogGroup(c, names.flushLogGroup))
      .step('logGroup', ['function'], (_, c) => deleteLogGroup(c, names.logGroup))
      // the functions run its image until they are gone
      .step('repository', ['flushFunction', 'function', 'migrateFunction'], (_, c) => deleteRepository(c))
      // once nothing invokes the functions that write to them
      .step('database', ['eventSource', 'schedule'], (_, c) =>
        deleteDatabase(c, {
          ...options.database,
          force: options.force,
          finalSnapshot: options.finalSnapshot,
        }),
      )
      .step('cache', ['eventSource', 'schedule'], (_, c) => deleteCache(c, options.cache))
      .step('notification', [], (_, c) => deleteNotification(c))
      .step('subscription', [], (_, c) => deleteSubscription(c))
      .step('queue', ['eventSource', 'subscription'], (_, c) => deleteQueue(c))
      .step('topic', ['notification', 'subscription'], (_, c) => deleteTopic(c))
      // the queue's redrive policy names it
      .step('dlq', ['queue'], (_, c) => deleteDeadLetterQueue(c))
      .step('bucket', ['notification'], (_, c) => deleteBucket(c))
      // The cache's and the database's network interfaces go with them. Deleted
      // VPC functions keep theirs for up to ~20 min: the security groups wait
      // them out (DependencyViolation, bounded retries with progress) before the
      // subnets and the VPC go. That wait began when the functions went, so it
      // runs alongside the cache's and the database's deletions.
      .step('network', ['flushFunction', 'function', 'migrateFunction', 'cache', 'database'], (_, c) =>
        deleteNetwork(c, options.network),
      )
      .step('schedulerRole', ['schedule'], (_, c) => deleteRole(c, names.schedulerRole))
      // Lambda removes a deleted VPC function's network interfaces with its
      // execution role: these go once the network is gone, that is once the
      // interfaces are
      .step('roles', ['network'], async (_, c) => {
        await deleteRole(c, names.migrateRole);
        await deleteRole(c, names.role);
      })
      // the generator's role, and this stack's use of the GitHub OIDC provider
      // (deleted with the last stack that used it, and only if up.ts created it)
      .step('generatorRole', [], (_, c) => deleteRole(c, names.generatorRole))
      .step('githubProvider', ['generatorRole'], (_, c) => deleteGithubProvider(c))
  );
}

export async function teardownStack(ctx: Ctx, options: TeardownOptions): Promise<{ changes: Change[] }> {
  await runStack(ctx, teardownSteps(ctx, options), options.observe);
  return { changes: ctx.changes };
}

// Anything that still carries the stack's tags. The tagging API is eventually
// consistent, so a resource deleted seconds ago may still be listed; secrets
// stay listed during their recovery window, and a final DB snapshot is kept on purpose.
export async function findLeftovers(ctx: Ctx): Promise<Leftover[]> {
  const leftovers: Leftover[] = [];
  const pages = paginateGetResources(
    { client: ctx.clients.tagging },
    { TagFilters: Object.entries(ctx.names.tags).map(([Key, value]) => ({ Key, Values: [value] })) },
  );
  for await (const page of pages) {
    for (const resource of page.ResourceTagMappingList ?? []) {
      leftovers.push({
        arn: resource.ResourceARN ?? '',
        tags: fromTagList(resource.Tags),
      });
    }
  }
  return leftovers;
}

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    help: { type: 'boolean' },
    yes: { type: 'boolean' },
    force: { type: 'boolean' },
    'final-snapshot': { type: 'boolean' },
    'skip-final-snapshot': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (flags.help) {
    process.stdout.write(`${usage}\n`);
    return ExitCode.ok;
  }
  if (flags['final-snapshot'] && flags['skip-final-snapshot']) {
    throw new UsageError('--final-snapshot and --skip-final-snapshot contradict each other: pass one');
  }
  if (!flags.yes && !isInteractive()) {
    throw new UsageError(
      'down deletes the stack and its data and there is no terminal to confirm on: pass --yes',
    );
  }
  const json = Boolean(flags.json);
  const config = loadDeployConfig();
  const log = createConsoleLog({ json });
  const clients = createClients(config.aws);
  try {
    const ctx = await createContext(config, clients, log, 'apply');
    if (!flags.yes) {
      const question = `Delete every resource of ${ctx.names.base} in account ${ctx.identity.accountId}, ${ctx.identity.region}, including the bucket's files and the database${flags['skip-final-snapshot'] ? ' (no final snapshot)' : ''}?`;
      if (!(await confirm(question))) {
        log.info('nothing deleted');
        return ExitCode.failed;
      }
    }
    log.info(`tearing down ${ctx.names.base} in account ${ctx.identity.accountId}, ${ctx.identity.region}`);
    const { changes } = await teardownStack(ctx, {
      force: Boolean(flags.force),
      finalSnapshot: !flags['skip-final-snapshot'],
    });
    let leftovers: Leftover[] | undefined;
    try {
      leftovers = await findLeftovers(ctx);
    } catch (error) {
      log.warn(
        `cannot list what still carries the stack's tags: ${describeError(error)} (check tag:GetResources permission)`,
      );
    }
    log.done();
    if (json) {
      process.stdout.write(`${JSON.stringify({ ...planDocument('apply', changes), leftovers }, null, 2)}\n`);
    } else {
      process.stdout.write(`${renderChanges(changes)}\n`);
      if (leftovers !== undefined && leftovers.length > 0) {
        process.stdout.write(
          `\nStill tagged app=${config.stack.app}, stage=${config.stack.stage} (the tagging index lags deletions by minutes; secrets stay until their recovery window ends):\n`,
        );
        for (const leftover of leftovers) process.stdout.write(`  ${leftover.arn}\n`);
      } else if (leftovers !== undefined) {
        process.stdout.write("\nNothing carries the stack's tags any more.\n");
      }
    }
    return ExitCode.ok;
  } finally {
    destroyClients(clients);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await runCli(() => main(process.argv.slice(2)));
}
