// Benchmark: a fresh up and then a down of the whole stack, on the
// control-plane fakes (test/fakes/) and the in-process S3/SNS/SQS emulator,
// with each slow resource's typical creation and deletion time played on a
// virtual clock (test/fakes/clock.ts): the run waits as AWS would make it
// wait, polls as it would poll, and takes seconds.
//
//   node --import tsx bench/provision.ts [--runs 5] [--cache-max-delay 60]
//
// For up and for down it reports the wall time (virtual), the sum of the
// played times (what one step after the other would wait at least), the
// critical path (the longest chain of played times through the graph of
// provisionSteps / teardownSteps) and wall / critical path: the goal is
// ≤ 1.1, that is the graph waits for little more than what must come one
// after the other. Polling past the moment a resource is ready (the SDK
// waiters' backoff, up to maxDelay) is in the wall time and not in the
// critical path. API calls take no virtual time.
//
// The played times, typical values, and what they rest on:
//
// | resource                                         | create   | delete   | source                                                                                                                                                    |
// | ------------------------------------------------ | -------- | -------- | --------------------------------------------------------------------------------------------------------------------------------------------------------- |
// | ElastiCache replication group, 2 nodes, Multi-AZ | 12.5 min | 6 min    | ~10–15 min to create (provision/resources/cache.ts); Terraform's acceptance test of a Multi-AZ group, create to destroy, takes 26 min (hashicorp/terraform-provider-aws#22666) |
// | RDS PostgreSQL instance, single-AZ               | 7.5 min  | 5 min    | ~5–15 min to create (provision/resources/database.ts); the RDS User Guide's status table lists creating → backing-up → available; deletion with a final snapshot takes minutes |
// | VPC interface endpoint (Secrets Manager)         | 1.5 min  | 1 min    | ~2 min pending → available (provision/resources/ec2.ts networkWaits); a gateway endpoint is available at once                                                |
// | Lambda function (VPC, container image)           | 30 s     | at once  | Pending while Lambda sets up the VPC resources, then Active (Lambda Developer Guide, "Lambda function states", which gives no duration: 30 s assumed)                                              |
// | Lambda event source mapping                      | 15 s     | 15 s     | Creating → Enabled, Deleting → gone (Lambda API reference, EventSourceMappingConfiguration State; no duration published: 15 s assumed)                                                 |
// | deleted VPC functions' network interfaces        | –        | 20 min   | Lambda keeps them up to ~20 min after the function is deleted (provision/resources/ec2.ts networkWaits, Lambda Developer Guide "VPC networking"); older reports say 40–45 min |
//
// VPC, subnets, route table, security groups, roles, queues, topic, bucket,
// log groups, repository, alarms: seconds or less, played as no time.
//
// How: the fakes keep a transitional resource (creating, pending, deleting)
// where it is while its `pendingDescribes` is above 0; the bench holds it
// there until its played time is up. The Lambda fake's functions and
// mappings are Active and Enabled at once, so the bench answers Pending and
// Creating (and Deleting for a deleted mapping) in their place until their
// time is up. A deleted VPC function's interfaces hold the function security
// group (DependencyViolation, the EC2 fake's lingeringEnis) for their time.

import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { GetEventSourceMappingCommand, ResourceNotFoundException } from '@aws-sdk/client-lambda';
import { readWholeNumber } from '../lib/cli.ts';
import { createClients, destroyClients } from '../lib/clients.ts';
import { loadDeployConfig } from '../lib/config.ts';
import { parseFlags } from '../lib/flags.ts';
import type { Step } from '../lib/graph.ts';
import { stackNames } from '../lib/names.ts';
import { formatElapsed } from '../lib/poll.ts';
import type { Ctx, Log } from '../lib/reconcile.ts';
import { emulatorCredentials, startEmulator } from '../local/emulator.ts';
import { createContext, provisionStack, provisionSteps } from '../provision/up.ts';
import { teardownStack, teardownSteps } from '../teardown/down.ts';
import { installVirtualClock, type VirtualClock } from '../test/fakes/clock.ts';
import { type FakeAws, installFakeAws, stackServices } from '../test/fakes/index.ts';

const flags = parseFlags(process.argv.slice(2), {
  runs: { type: 'string' },
  'cache-max-delay': { type: 'string' },
});
const runs = readWholeNumber('runs', flags.runs ?? '5', 1, 50);
// what if the cache's waiter polled more often (production: cacheWaits.maxDelaySeconds)
const cacheMaxDelay = flags['cache-max-delay'];
const cache =
  cacheMaxDelay === undefined
    ? {}
    : { waits: { maxDelaySeconds: readWholeNumber('cache-max-delay', cacheMaxDelay, 1, 3600) } };

const second = 1_000;
const minute = 60 * second;
const played = {
  replicationGroup: { create: 12.5 * minute, delete: 6 * minute },
  dbInstance: { create: 7.5 * minute, delete: 5 * minute },
  interfaceEndpoint: { create: 1.5 * minute, delete: 1 * minute },
  functionActive: 30 * second,
  mapping: { create: 15 * second, delete: 15 * second },
  functionInterfaces: 20 * minute,
};

// The played times each step waits through, one after the other; the critical
// path is the longest chain of them through the steps' needs.
const upTimes: Record<string, number> = {
  endpoints: played.interfaceEndpoint.create,
  cache: played.replicationGroup.create,
  database: played.dbInstance.create,
  migration: played.functionActive,
  countFunction: played.functionActive,
  flushFunction: played.functionActive,
  eventSource: played.mapping.create,
};
const downTimes: Record<string, number> = {
  eventSource: played.mapping.delete,
  cache: played.replicationGroup.delete,
  database: played.dbInstance.delete,
  'network: endpoints': played.interfaceEndpoint.delete,
  "functions' interfaces": played.functionInterfaces,
};

interface Node {
  name: string;
  needs: readonly string[];
}

// The network step of down deletes its endpoints, then the security groups,
// which wait for the deleted functions' interfaces: two nodes, so that the
// endpoints' deletion overlaps that wait as it does in the run.
function downNodes(steps: readonly Node[]): Node[] {
  const functions = ['flushFunction', 'function', 'migrateFunction'];
  return steps.flatMap((step): Node[] =>
    step.name === 'network'
      ? [
          { name: "functions' interfaces", needs: functions },
          { name: 'network: endpoints', needs: step.needs },
          { name: 'network', needs: ['network: endpoints', "functions' interfaces"] },
        ]
      : [step],
  );
}

function criticalPath(nodes: readonly Node[], times: Record<string, number>): { ms: number; path: string[] } {
  const done = new Map<string, { ms: number; path: string[] }>();
  const finish = (name: string): { ms: number; path: string[] } => {
    const known = done.get(name);
    if (known !== undefined) return known;
    const node = nodes.find((n) => n.name === name);
    let longest = { ms: 0, path: [] as string[] };
    for (const need of node?.needs ?? []) {
      const before = finish(need);
      if (before.ms > longest.ms) longest = before;
    }
    const own = times[name] ?? 0;
    const result = { ms: longest.ms + own, path: own > 0 ? [...longest.path, name] : longest.path };
    done.set(name, result);
    return result;
  };
  return nodes.map((n) => finish(n.name)).reduce((a, b) => (b.ms > a.ms ? b : a), { ms: 0, path: [] });
}

const sum = (times: Record<string, number>) => Object.values(times).reduce((a, b) => a + b, 0);
const upSum = sum(upTimes);
const downSum = sum(downTimes);

// Plays the table on the fakes: before and after every call, each
// transitional resource is held while its time is not up; Lambda's answers
// say Pending/Creating/Deleting while theirs is not.
function playTimes(ctx: Ctx, aws: FakeAws, clock: VirtualClock): void {
  const readyAt = new Map<string, number>();
  const until = (key: string, ms: number) => {
    if (!readyAt.has(key)) readyAt.set(key, clock.now() + ms);
    return readyAt.get(key) ?? 0;
  };
  const hold = (resource: { pendingDescribes: number }, key: string, ms: number) => {
    resource.pendingDescribes = clock.now() < until(key, ms) ? Number.MAX_SAFE_INTEGER : 0;
  };
  const settle = () => {
    for (const group of aws.elasticache.state.replicationGroups.values()) {
      if (group.status === 'creating')
        hold(group, `cache ${group.id} create`, played.replicationGroup.create);
      if (group.status === 'deleting')
        hold(group, `cache ${group.id} delete`, played.replicationGroup.delete);
    }
    for (const [id, instance] of aws.rds.state.instances) {
      if (instance.status === 'creating') hold(instance, `db ${id} create`, played.dbInstance.create);
      if (instance.status === 'deleting') hold(instance, `db ${id} delete`, played.dbInstance.delete);
    }
    for (const endpoint of aws.ec2.state.endpoints.values()) {
      if (endpoint.VpcEndpointType !== 'Interface') continue;
      const id = endpoint.VpcEndpointId;
      if (endpoint.State === 'pending')
        hold(endpoint, `endpoint ${id} create`, played.interfaceEndpoint.create);
      if (endpoint.State === 'deleting')
        hold(endpoint, `endpoint ${id} delete`, played.interfaceEndpoint.delete);
    }
  };
  const functionCreated = new Map<string, number>();
  const mappingCreated = new Map<string, number>();
  const mappingDeleted = new Map<string, number>();
  let functionsDeletedAt: number | undefined;
  const functionGroupId = () =>
    [...aws.ec2.state.securityGroups.values()].find((g) => /-function$/.test(g.GroupName))?.GroupId;

  type Sender = { send(command: object, ...rest: unknown[]): Promise<unknown> };
  for (const service of stackServices) {
    const client = ctx.clients[service] as unknown as Sender;
    const send = client.send.bind(client);
    client.send = async (command: object, ...rest: unknown[]) => {
      const name = command.constructor.name.replace(/Command$/, '');
      const input = (command as { input: Record<string, unknown> }).input;
      const now = clock.now();
      settle();
      if (name === 'DeleteSecurityGroup' && input.GroupId === functionGroupId()) {
        const gone = (functionsDeletedAt ?? 0) + played.functionInterfaces;
        if (functionsDeletedAt !== undefined && now < gone) {
          aws.ec2.state.lingeringEnis.set(String(input.GroupId), 1);
        }
      }
      let answer: unknown;
      try {
        answer = await clock.hold(send(command, ...rest));
      } catch (error) {
        const deletedAt = mappingDeleted.get(String(input.UUID));
        if (
          command instanceof GetEventSourceMappingCommand &&
          error instanceof ResourceNotFoundException &&
          deletedAt !== undefined &&
          now < deletedAt + played.mapping.delete
        ) {
          return { UUID: input.UUID, State: 'Deleting', $metadata: {} };
        }
        throw error;
      } finally {
        settle();
      }
      const result = answer as Record<string, unknown> & { Configuration?: Record<string, unknown> };
      if (name === 'CreateFunction') functionCreated.set(String(input.FunctionName), now);
      if (name === 'DeleteFunction') functionsDeletedAt = now;
      if (name === 'CreateEventSourceMapping') mappingCreated.set(String(result.UUID), now);
      if (name === 'DeleteEventSourceMapping') mappingDeleted.set(String(input.UUID), now);
      if (name === 'GetFunction' || name === 'GetFunctionConfiguration') {
        const created = functionCreated.get(String(input.FunctionName));
        if (created !== undefined && now < created + played.functionActive) {
          return name === 'GetFunction'
            ? { ...result, Configuration: { ...result.Configuration, State: 'Pending' } }
            : { ...result, State: 'Pending' };
        }
      }
      if (name === 'GetEventSourceMapping') {
        const created = mappingCreated.get(String(input.UUID));
        if (created !== undefined && now < created + played.mapping.create) {
          return { ...result, State: 'Creating' };
        }
      }
      return answer;
    };
  }
}

const quiet: Log = { info() {}, warn: (message) => console.error(`warning: ${message}`), progress() {} };

type Spans = Map<string, { start: number; end: number }>;

interface Measured {
  upMs: number;
  downMs: number;
  realMs: number;
  // each step's virtual start and end
  up: Spans;
  down: Spans;
}

function observe(clock: VirtualClock, spans: Spans) {
  return {
    onStart: (step: string) => spans.set(step, { start: clock.now(), end: Number.NaN }),
    onFinish: (step: string) => {
      const span = spans.get(step);
      if (span !== undefined) span.end = clock.now();
    },
  };
}

async function runOnce(index: number): Promise<Measured> {
  const emulator = await startEmulator({ port: 0 });
  const aws = installFakeAws({ accountId: '000000000000' });
  // the migration function runs no database here: it answers as a finished migration does
  aws.lambda.runtimes.set('index.migrateHandler', () => ({ migrated: true }));
  const loaded = loadDeployConfig({
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: emulator.endpoint,
    AWS_ENDPOINT_URL_SNS: emulator.endpoint,
    AWS_ENDPOINT_URL_SQS: emulator.endpoint,
    STAGE: `bench${index}`,
  });
  const config = { ...loaded, aws: { ...loaded.aws, credentials: emulatorCredentials } };
  // down's own clients, so each run's calls are played once
  const [upClients, downClients] = [createClients(config.aws), createClients(config.aws)];
  const clock = installVirtualClock();
  const realStarted = performance.now();
  try {
    const upCtx = await createContext(config, upClients, quiet, 'apply');
    playTimes(upCtx, aws, clock);
    const imageUri = `000000000000.dkr.ecr.us-east-1.amazonaws.com/${upCtx.names.repository}@sha256:${'5'.repeat(64)}`;
    const up: Spans = new Map();
    const upStarted = clock.now();
    await provisionStack(upCtx, { imageUri, cache, observe: observe(clock, up) });
    const upMs = clock.now() - upStarted;

    const downCtx = await createContext(config, downClients, quiet, 'apply');
    playTimes(downCtx, aws, clock);
    const down: Spans = new Map();
    const downStarted = clock.now();
    await teardownStack(downCtx, { force: false, finalSnapshot: true, observe: observe(clock, down) });
    const downMs = clock.now() - downStarted;
    return { upMs, downMs, realMs: performance.now() - realStarted, up, down };
  } finally {
    clock.restore();
    aws.restore();
    destroyClients(upClients);
    destroyClients(downClients);
    await emulator.stop();
  }
}

// the steps' names and needs, from a context that makes no call
const probeConfig = loadDeployConfig({ AWS_REGION: 'us-east-1' });
const probeIdentity = { accountId: '000000000000', region: 'us-east-1', partition: 'aws' };
const probe = {
  config: probeConfig,
  identity: probeIdentity,
  names: stackNames(probeConfig.stack, probeIdentity),
} as Ctx;
const upNodes: Node[] = provisionSteps(probe).steps.map(({ name, needs }: Step<Ctx>) => ({ name, needs }));
const downNodesList = downNodes(
  teardownSteps(probe, { force: false, finalSnapshot: true }).steps.map(({ name, needs }: Step<Ctx>) => ({
    name,
    needs,
  })),
);
const upCritical = criticalPath(upNodes, upTimes);
const downCritical = criticalPath(downNodesList, downTimes);

const loadBefore = loadavg();
const measured: Measured[] = [];
for (let index = 1; index <= runs; index += 1) {
  const run = await runOnce(index);
  measured.push(run);
  console.error(
    `run ${index}: up ${formatElapsed(run.upMs)}, down ${formatElapsed(run.downMs)} (virtual), ${(run.realMs / 1000).toFixed(1)} s real`,
  );
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};
const minutes = (ms: number) => `${(ms / minute).toFixed(2)} min`;
const goal = 1.1;
const cpu = cpus();
const lines = [
  `date: ${new Date().toISOString()}`,
  `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`,
  `load average (1/5/15 min) before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
  `runs: ${runs}, each a fresh up then a down${cacheMaxDelay === undefined ? '' : `, the cache's waiter polling at most every ${cacheMaxDelay} s`}; real time per run: median ${(median(measured.map((m) => m.realMs)) / 1000).toFixed(1)} s`,
  '',
  '| run | wall (median) | wall (worst) | sum of played times | critical path | wall / critical path, median | worst |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
];
const verdicts: string[] = [];
for (const [what, walls, total, critical] of [
  ['up', measured.map((m) => m.upMs), upSum, upCritical],
  ['down', measured.map((m) => m.downMs), downSum, downCritical],
] as const) {
  const mid = median(walls);
  const worst = Math.max(...walls);
  lines.push(
    `| ${what} | ${minutes(mid)} | ${minutes(worst)} | ${minutes(total)} | ${minutes(critical.ms)} | ${(mid / critical.ms).toFixed(3)} | ${(worst / critical.ms).toFixed(3)} |`,
  );
  verdicts.push(
    `${what}: critical path ${critical.path.join(' → ')}; goal wall / critical path ≤ ${goal}: ${worst / critical.ms <= goal ? 'met' : 'NOT met'} (worst ${(worst / critical.ms).toFixed(3)}); sum / wall ${(total / mid).toFixed(2)}× (median)`,
  );
}
// Where the wall time beyond the critical path goes: each played step's time
// in the run against its played time (the rest is polling past the moment
// the resource was ready).
const stepLines = [
  '| run | step | played | in the run (median) | (worst) |',
  '| --- | --- | ---: | ---: | ---: |',
];
for (const [what, times, spans] of [
  ['up', upTimes, measured.map((m) => m.up)],
  ['down', downTimes, measured.map((m) => m.down)],
] as const) {
  for (const [step, ms] of Object.entries(times)) {
    const taken = spans
      .map((s) => s.get(step))
      .filter((s) => s !== undefined)
      .map((s) => s.end - s.start);
    if (taken.length === 0) continue;
    stepLines.push(
      `| ${what} | ${step} | ${formatElapsed(ms)} | ${formatElapsed(median(taken))} | ${formatElapsed(Math.max(...taken))} |`,
    );
  }
}
console.log([...lines, '', ...verdicts, '', ...stepLines].join('\n'));
