import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DescribeImagesCommand, ImageNotFoundException } from '@aws-sdk/client-ecr';
import type { PublishOptions } from '../lambda-image/publish.ts';
import { type Clients, createClients, destroyClients } from '../lib/clients.ts';
import { type DeployConfig, loadDeployConfig } from '../lib/config.ts';
import { stepError, UsageError } from '../lib/errors.ts';
import { parseFlags } from '../lib/flags.ts';
import { type Graph, graph, type RunOptions, StepFailure } from '../lib/graph.ts';
import { stackNames } from '../lib/names.ts';
import { type StackOutputs, writeOutputs } from '../lib/outputs.ts';
import { PolicyFile } from '../lib/policy-files.ts';
import { type Change, type Ctx, isPlan, type Log, type Mode, pending } from '../lib/reconcile.ts';
import { type ConsoleLog, confirm, createConsoleLog, ExitCode, isInteractive, runCli } from './cli.ts';
import { type CostShape, defaultShape, estimateIdleCost } from './cost.ts';
import { hasChanges, planDocument, renderChanges, renderCost } from './plan.ts';
import { checkPermissions, renderDenials } from './preflight.ts';
import { trackInFlight } from './progress.ts';
import { ensureAlarms, memberClusterIds } from './resources/alarms.ts';
import { ensureAlerts } from './resources/alerts.ts';
import { requireBoundary } from './resources/boundary.ts';
import { ensureBucket } from './resources/bucket.ts';
import { type CacheOptions, cacheReplicas, ensureCache } from './resources/cache.ts';
import { ensureDashboard } from './resources/dashboard.ts';
import { type DatabaseOptions, ensureDatabase } from './resources/database.ts';
import { ensureEventSource } from './resources/event-source.ts';
import {
  type ConnectionInputs,
  desiredCountFunction,
  desiredFlushFunction,
  ensureFunction,
  type FunctionInputs,
  findFunction,
  functionArn,
  functionEnvironment,
} from './resources/function.ts';
import { ensureGithubProvider } from './resources/github-oidc.ts';
import { resolveIdentity } from './resources/identity.ts';
import { ensureLogGroup } from './resources/log-group.ts';
import { ensureMigration } from './resources/migration.ts';
import {
  ensureEndpoints,
  ensureNetworkBase,
  type NetworkOptions,
  type NetworkOutputs,
} from './resources/network.ts';
import { ensureNotification } from './resources/notification.ts';
import { ensureDeadLetterQueue, ensureQueue } from './resources/queue.ts';
import { ensureRepository } from './resources/repository.ts';
import { ensureFunctionRole, ensureGeneratorRole, ensureSchedulerRole } from './resources/role.ts';
import { ensureSchedule } from './resources/schedule.ts';
import { ensureSubscription } from './resources/subscription.ts';
import { ensureTopic } from './resources/topic.ts';

const usage = `Usage: npx tsx provision/up.ts [options]

Creates or updates every AWS resource of the stack, each as soon as what it
needs exists (the cache and the database take minutes; the rest is made
meanwhile), and writes .ada/outputs.<stage>.json. Running it again changes
only what drifted.
First it asks IAM whether the caller may make every request of the run
(docs/deployer-policy.json, iam:SimulatePrincipalPolicy) and stops before any
change, naming each missing permission, when it may not.

Options:
  --plan, --dry-run    show what would be created or updated (no changes) and the idle monthly cost
  --json               print the plan or result as JSON on stdout (messages go to stderr)
  --yes                do not ask for confirmation (required when not on a terminal)
  --image-uri URI      deploy this image (repository@sha256:..., or a tag in the stack's repository)
                       instead of building and pushing one
  --help               show this help

Configuration comes from the environment (AWS_REGION, APP, STAGE, FUNCTION_*, ...);
see docs/deploy.md.`;

export interface ProvisionOptions {
  // --image-uri; otherwise the image is built and pushed by lambda-image/publish.ts
  imageUri?: string | undefined;
  // tests point the build at a stand-in base image, CA bundle and entry
  build?: Pick<PublishOptions, 'baseImage' | 'entry' | 'caBundleUrl'>;
  // tests shorten the long waits of the network and the cache
  network?: NetworkOptions;
  cache?: CacheOptions;
  database?: DatabaseOptions;
  // when each step starts and ends (bench/provision.ts, tests)
  observe?: StepObserver;
}

export type StepObserver = Pick<RunOptions<Ctx>, 'onStart' | 'onFinish'>;

export interface ProvisionResult {
  outputs: StackOutputs;
  changes: Change[];
}

export async function createContext(
  config: DeployConfig,
  clients: Clients,
  log: Log,
  mode: Mode,
): Promise<Ctx> {
  const region = config.aws.region;
  if (region === undefined) throw new UsageError('AWS_REGION is not set');
  const identity = await resolveIdentity(clients.sts, region);
  return { config, clients, log, mode, identity, names: stackNames(config.stack, identity), changes: [] };
}

// The architecture diagram, top to bottom, as a graph: each step names the
// steps whose outputs it needs and starts as soon as they are done, so the
// slow ones (the cache, the database and the network's endpoints) run
// side by side while the rest is made, and are waited for only where their outputs are
// needed. The plan and the changes keep this order whatever finishes first.
// what the counting and the flush function are made from, and what must exist
// before either runs (the tables, and log groups with their retention)
const functionNeeds = [
  'role',
  'image',
  'network',
  'endpoints',
  'cache',
  'database',
  'migration',
  'logGroup',
  'flushLogGroup',
] as const;

export function provisionSteps(ctx: Ctx, options: ProvisionOptions = {}) {
  const { names } = ctx;
  const monitored = {
    queueName: names.queue,
    dlqName: names.dlq,
    functionName: names.function,
    flushFunctionName: names.flushFunction,
    cacheClusterIds: memberClusterIds(names.cache, 1 + cacheReplicas),
    dbInstanceId: names.db,
  };
  return (
    graph<Ctx>()
      .step('network', [], (_, c) => ensureNetworkBase(c, options.network))
      // the functions and the migration reach S3 and Secrets Manager through
      // them; the cache and the database do not wait for them
      .step('endpoints', ['network'], ({ network }, c) => ensureEndpoints(c, network, options.network))
      .step('bucket', [], (_, c) => ensureBucket(c))
      .step('dlq', [], (_, c) => ensureDeadLetterQueue(c))
      .step('topic', ['bucket'], ({ bucket }, c) => ensureTopic(c, { bucketArn: bucket.arn }))
      .step('queue', ['dlq', 'topic'], ({ dlq, topic }, c) =>
        ensureQueue(c, { dlqArn: dlq.arn, topicArn: topic.arn }),
      )
      .step('subscription', ['topic', 'queue'], ({ topic, queue }, c) =>
        ensureSubscription(c, { topicArn: topic.arn, queueArn: queue.arn }),
      )
      // uploads are announced once the topic delivers to the queue
      .step('notification', ['bucket', 'topic', 'subscription'], ({ bucket, topic }, c) =>
        ensureNotification(c, { bucket: bucket.name, topicArn: topic.arn }),
      )
      .step('cache', ['network'], ({ network }, c) =>
        ensureCache(
          c,
          { subnetIds: network.subnetIds, securityGroupId: network.securityGroups.cache },
          options.cache,
        ),
      )
      .step('database', ['network'], ({ network }, c) =>
        ensureDatabase(
          c,
          { subnetIds: network.subnetIds, securityGroupId: network.securityGroups.database },
          options.database,
        ),
      )
      .step('repository', [], (_, c) => ensureRepository(c))
      .step('image', ['repository'], ({ repository }, c) => resolveImage(c, repository.uri, options))
      // before the functions that write to them, so Lambda does not make them without retention
      .step('logGroup', [], (_, c) => ensureLogGroup(c, names.logGroup))
      .step('flushLogGroup', [], (_, c) => ensureLogGroup(c, names.flushLogGroup))
      .step('migrateLogGroup', [], (_, c) => ensureLogGroup(c, names.migrateLogGroup))
      // the tables and the functions' database role, before any function that uses them
      .step(
        'migration',
        ['image', 'network', 'endpoints', 'database', 'migrateLogGroup'],
        ({ image, network, database }, c) =>
          ensureMigration(c, {
            imageUri: image,
            subnetIds: network.subnetIds,
            securityGroupId: network.securityGroups.function,
            database,
          }),
      )
      .step('role', ['bucket', 'queue', 'cache', 'database'], ({ bucket, queue, cache, database }, c) =>
        ensureFunctionRole(c, {
          bucket: bucket.name,
          queueArn: queue.arn,
          secretArns: [cache.authSecretArn],
          database: { resourceId: database.resourceId, user: names.dbAppUser },
          logGroups: [names.logGroup, names.flushLogGroup],
        }),
      )
      .step('schedulerRole', [], (_, c) =>
        ensureSchedulerRole(c, { functionArn: functionArn(c, names.flushFunction) }),
      )
      .step('countFunction', functionNeeds, ({ role, image, network, cache, database }, c) =>
        ensureFunction(
          c,
          desiredCountFunction(c, functionInputs(c, { role, image, network, cache, database })),
        ),
      )
      .step('flushFunction', functionNeeds, ({ role, image, network, cache, database }, c) =>
        ensureFunction(
          c,
          desiredFlushFunction(c, functionInputs(c, { role, image, network, cache, database })),
        ),
      )
      .step('eventSource', ['countFunction', 'queue'], ({ countFunction, queue }, c) =>
        ensureEventSource(c, { functionName: countFunction.name, queueArn: queue.arn }),
      )
      .step('schedule', ['flushFunction', 'schedulerRole'], ({ flushFunction, schedulerRole }, c) =>
        ensureSchedule(c, { functionArn: flushFunction.arn, roleArn: schedulerRole.arn }),
      )
      .step('generator', [], (_, c) => ensureGenerator(c))
      .step('alerts', [], (_, c) => ensureAlerts(c))
      // alarms and the dashboard name the resources; CloudWatch does not need them to exist
      .step('alarms', ['alerts'], ({ alerts }, c) =>
        ensureAlarms(c, { ...monitored, alertsTopicArn: alerts.topicArn }),
      )
      .step('dashboard', [], (_, c) => ensureDashboard(c, monitored))
  );
}

// What both functions are made from: the same role, image, network and settings.
function functionInputs(
  ctx: Ctx,
  made: {
    role: { arn: string };
    image: string;
    network: NetworkOutputs;
    cache: ConnectionInputs['cache'];
    database: Omit<ConnectionInputs['database'], 'user'>;
  },
): FunctionInputs {
  const { role, image, network, cache, database } = made;
  return {
    roleArn: role.arn,
    imageUri: image,
    subnetIds: network.subnetIds,
    securityGroupId: network.securityGroups.function,
    environment: functionEnvironment(ctx, { cache, database: { ...database, user: ctx.names.dbAppUser } }),
  };
}

export async function provisionStack(ctx: Ctx, options: ProvisionOptions = {}): Promise<ProvisionResult> {
  const { names } = ctx;
  // every role carries it; an administrator made it (provision/bootstrap.ts).
  // Checked before any step starts: without it nothing is created.
  await requireBoundary(ctx);
  const { bucket, topic, queue, dlq, countFunction, image, cache, database, alerts, dashboard, generator } =
    await runStack(ctx, provisionSteps(ctx, options), options.observe);

  const outputs: StackOutputs = {
    app: ctx.config.stack.app,
    stage: ctx.config.stack.stage,
    region: ctx.identity.region,
    accountId: ctx.identity.accountId,
    bucket: bucket.name,
    uploadsPrefix: names.uploadsPrefix,
    topicArn: topic.arn,
    queueUrl: queue.url,
    queueArn: queue.arn,
    dlqUrl: dlq.url,
    dlqArn: dlq.arn,
    functionName: countFunction.name,
    functionArn: countFunction.arn,
    imageUri: image,
    cacheEndpoint: `${cache.host}:${cache.port}`,
    dbEndpoint: `${database.host}:${database.port}`,
    dbSecretArn: database.secretArn,
    cacheAuthSecretArn: cache.authSecretArn,
    alertsTopicArn: alerts.topicArn,
    dashboardName: dashboard.dashboardName,
    ...(generator === undefined ? {} : { generatorRoleArn: generator }),
    updatedAt: new Date().toISOString(),
  };
  return { outputs, changes: ctx.changes };
}

// Runs a stack's steps (provisionStack, teardownStack) on the context: each
// step records into its own list and the lists join ctx.changes in the
// declared order, so a plan and its run list the same lines in the same order
// whatever finished first. Progress lines become the shared in-flight line. A
// failure is the failed step's own error (its message names the resource).
export async function runStack<Results extends Record<string, unknown>>(
  ctx: Ctx,
  stack: Graph<Results, Ctx>,
  observe: StepObserver = {},
): Promise<Results> {
  const lists = new Map(stack.steps.map((step) => [step.name, [] as Change[]]));
  const inFlight = trackInFlight(ctx.log);
  try {
    return await stack.run({
      context: (step) => ({ ...ctx, log: inFlight.log, changes: lists.get(step) ?? [] }),
      onStart: (step) => {
        inFlight.started(step);
        observe.onStart?.(step);
      },
      onFinish: (step, error) => {
        inFlight.finished(step);
        observe.onFinish?.(step, error);
      },
    });
  } catch (error) {
    throw error instanceof StepFailure ? error.cause : error;
  } finally {
    for (const changes of lists.values()) ctx.changes.push(...changes);
  }
}

// The scheduled generator's own identity, when the repository is known
// (GITHUB_REPOSITORY, which GitHub Actions sets in deploy.yml's runs): the
// account's GitHub OIDC provider and a role that trusts only that
// repository's main branch. Without it, docs/image.md says how to make the
// role by hand.
async function ensureGenerator(ctx: Ctx): Promise<string | undefined> {
  const repository = ctx.config.provision.githubRepository;
  if (repository === undefined) return undefined;
  const provider = await ensureGithubProvider(ctx);
  const role = await ensureGeneratorRole(ctx, { providerArn: provider.arn, repository });
  return role.arn;
}

// The function is deployed by digest, so what runs is exactly what was
// pushed, whatever happens to tags later.
async function resolveImage(ctx: Ctx, repositoryUri: string, options: ProvisionOptions): Promise<string> {
  const given = options.imageUri;
  if (given !== undefined) {
    if (given.includes('@sha256:')) return given;
    const tagAt = given.lastIndexOf(':');
    const repository = given.slice(0, tagAt);
    if (tagAt <= given.lastIndexOf('/') || repository !== repositoryUri) {
      throw new UsageError(
        `--image-uri ${given}: give repository@sha256:<digest>, or <${repositoryUri}>:<tag> to deploy a tag of the stack's repository by its digest`,
      );
    }
    return resolveTag(ctx, repositoryUri, given.slice(tagAt + 1));
  }
  if (isPlan(ctx)) {
    // a plan builds nothing: it compares with the image deployed now
    const current = await findFunction(ctx, ctx.names.function);
    return current?.imageUri ?? pending('image built and pushed by up');
  }
  return publishWithBuilder(ctx, repositoryUri, options.build);
}

async function resolveTag(ctx: Ctx, repositoryUri: string, tag: string): Promise<string> {
  try {
    const answer = await ctx.clients.ecr.send(
      new DescribeImagesCommand({ repositoryName: ctx.names.repository, imageIds: [{ imageTag: tag }] }),
    );
    const digest = answer.imageDetails?.[0]?.imageDigest;
    if (digest === undefined) throw new Error(`no digest for tag ${tag}`);
    return `${repositoryUri}@${digest}`;
  } catch (error) {
    if (isPlan(ctx)) return `${repositoryUri}:${tag}`;
    if (error instanceof ImageNotFoundException) {
      throw new UsageError(`--image-uri: no image tagged ${tag} in ${repositoryUri}; push it first`);
    }
    throw stepError(
      `resolve image tag ${tag} in ${repositoryUri}`,
      error,
      'check ecr:DescribeImages permission',
    );
  }
}

// loaded only when needed: the builder pulls in esbuild and the registry client
async function publishWithBuilder(
  ctx: Ctx,
  repositoryUri: string,
  build: ProvisionOptions['build'] = {},
): Promise<string> {
  const { publishImage } = await import('../lambda-image/publish.ts');
  const image = await publishImage({
    ...build,
    ecr: ctx.clients.ecr,
    repositoryUri,
    architecture: ctx.config.fn.architecture,
    log: ctx.log,
  });
  ctx.log.info(
    `image ${image.imageUri} (${image.pushedBlobs === 0 ? 'already in ECR' : `${image.pushedBlobs} blobs pushed`})`,
  );
  return image.imageUri;
}

export function costShape(): CostShape {
  return { ...defaultShape, cacheNodes: 1 + cacheReplicas };
}

export interface UpRun {
  planOnly: boolean;
  json: boolean;
  yes: boolean;
  imageUri?: string | undefined;
  // tests shorten the waits and point the build at stand-ins
  provision?: Omit<ProvisionOptions, 'imageUri'>;
  out?: (text: string) => void;
  // messages beside a --json document (stderr by default)
  err?: (text: string) => void;
  // where .ada/outputs.<stage>.json goes (the working directory by default)
  root?: string | undefined;
}

// The permission check first (provision/preflight.ts): a caller that lacks a
// request up needs learns which, and nothing is created or changed. A caller
// that may not simulate its own policies is told so and the run goes on.
export async function checkBeforeRun(ctx: Ctx, out: (text: string) => void): Promise<boolean> {
  const result = await checkPermissions(ctx, PolicyFile.deployer);
  if (!result.checked) {
    ctx.log.warn(`permissions not checked before the run: ${result.reason}`);
    return true;
  }
  if (result.denied.length === 0) {
    ctx.log.info(
      `permissions checked: ${result.principal} may make the ${result.requests} requests up needs`,
    );
    return true;
  }
  out(`${renderDenials(result, PolicyFile.deployer)}\n`);
  ctx.log.info('nothing was created or changed');
  return false;
}

export async function runUp(
  config: DeployConfig,
  clients: Clients,
  log: ConsoleLog,
  run: UpRun,
): Promise<number> {
  const { planOnly, json, imageUri } = run;
  const out = run.out ?? ((text: string) => process.stdout.write(text));
  // with --json, stdout carries the JSON document alone: the check's report goes beside it
  const report = json ? (run.err ?? ((text: string) => process.stderr.write(text))) : out;
  const cost = estimateIdleCost(config, costShape());
  if (planOnly || !run.yes) {
    const planCtx = await createContext(config, clients, log, 'plan');
    log.info(
      `planning ${planCtx.names.base} in account ${planCtx.identity.accountId}, ${planCtx.identity.region}`,
    );
    if (!(await checkBeforeRun(planCtx, report))) return ExitCode.failed;
    const { changes } = await provisionStack(planCtx, { ...run.provision, imageUri });
    log.done();
    if (planOnly) {
      if (json) out(`${JSON.stringify(planDocument('plan', changes, cost), null, 2)}\n`);
      else out(`${renderChanges(changes)}\n\n${renderCost(cost)}\n`);
      return ExitCode.ok;
    }
    if (hasChanges(changes)) {
      out(`${renderChanges(changes)}\n\n${renderCost(cost)}\n\n`);
      if (!(await confirm('Create or update these AWS resources (they are billed while they exist)?'))) {
        log.info('nothing changed');
        return ExitCode.failed;
      }
    }
  }
  const ctx = await createContext(config, clients, log, 'apply');
  // after a plan, the check was made moments ago by the same caller
  if (run.yes && !(await checkBeforeRun(ctx, report))) return ExitCode.failed;
  log.info(`deploying ${ctx.names.base} to account ${ctx.identity.accountId}, ${ctx.identity.region}`);
  const result = await provisionStack(ctx, { ...run.provision, imageUri });
  const path = await writeOutputs(result.outputs, run.root);
  log.done();
  if (json) {
    out(
      `${JSON.stringify({ ...planDocument('apply', result.changes), outputs: result.outputs, outputsPath: path }, null, 2)}\n`,
    );
  } else {
    out(`\n${renderChanges(result.changes)}\n\nOutputs (${path}):\n`);
    for (const [key, value] of Object.entries(result.outputs)) out(`  ${key}: ${value}\n`);
  }
  return ExitCode.ok;
}

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    help: { type: 'boolean' },
    plan: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
    yes: { type: 'boolean' },
    'image-uri': { type: 'string' },
  });
  if (flags.help) {
    process.stdout.write(`${usage}\n`);
    return ExitCode.ok;
  }
  const planOnly = Boolean(flags.plan || flags['dry-run']);
  const json = Boolean(flags.json);
  const imageUri = flags['image-uri'];
  if (imageUri !== undefined && !/^[^\s@]+(@sha256:[0-9a-f]{64}|:[\w][\w.-]{0,127})$/.test(imageUri)) {
    throw new UsageError(
      `--image-uri ${imageUri} is not an image reference (repository@sha256:<64 hex> or repository:tag)`,
    );
  }
  if (!planOnly && !flags.yes && !isInteractive()) {
    throw new UsageError(
      'up creates billable AWS resources and there is no terminal to confirm on: pass --yes, or --plan to only preview',
    );
  }
  const config = loadDeployConfig();
  const log = createConsoleLog({ json });
  const clients = createClients(config.aws);
  try {
    return await runUp(config, clients, log, { planOnly, json, yes: Boolean(flags.yes), imageUri });
  } finally {
    destroyClients(clients);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await runCli(() => main(process.argv.slice(2)));
}
