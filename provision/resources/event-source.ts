import {
  CreateEventSourceMappingCommand,
  DeleteEventSourceMappingCommand,
  type EventSourceMappingConfiguration,
  FunctionResponseType,
  GetEventSourceMappingCommand,
  ListEventSourceMappingsCommand,
  ListTagsCommand,
  ResourceConflictException,
  ResourceInUseException,
  ResourceNotFoundException,
  TagResourceCommand,
  UpdateEventSourceMappingCommand,
} from '@aws-sdk/client-lambda';
import { stepError } from '../../lib/errors.ts';
import { pollUntil, retryWhile } from '../../lib/poll.ts';
import {
  type Ctx,
  destroy,
  diffFields,
  type FieldChange,
  missingTags,
  pending,
  type Resource,
  reconcile,
  step,
} from '../../lib/reconcile.ts';
import { reportElapsed } from '../progress.ts';
import { type Tags, tagDrift } from '../tags.ts';

const kind = 'event source mapping';

// Lambda moves a mapping through Creating/Enabling/Updating before Enabled;
// there is no SDK waiter for it. A minute or two is typical.
const enabledTimeoutMs = 5 * 60_000;
// Updating or deleting a mapping that is still in a transitional state fails
// with ResourceInUseException (UpdateEventSourceMapping API); it clears quickly.
const busyTimeoutMs = 2 * 60_000;

export interface EventSourceInputs {
  functionName: string;
  queueArn: string;
}

export type DesiredEventSource = ReturnType<typeof desiredEventSource>;

export type LiveEventSource = ReturnType<typeof toLive>;

export function desiredEventSource(ctx: Pick<Ctx, 'config' | 'names'>, inputs: EventSourceInputs) {
  const { fn } = ctx.config;
  return {
    functionName: inputs.functionName,
    queueArn: inputs.queueArn,
    batchSize: fn.batchSize,
    maximumBatchingWindowInSeconds: fn.batchingWindowSeconds,
    // without it Lambda ignores the handler's batchItemFailures and retries the whole batch
    functionResponseTypes: [FunctionResponseType.ReportBatchItemFailures] as FunctionResponseType[],
    maximumConcurrency: fn.maxConcurrency,
    enabled: true,
    tags: ctx.names.tags,
  };
}

function isEnabled(state: string | undefined): boolean {
  return state !== 'Disabled' && state !== 'Disabling';
}

// a mapping as Lambda lists it, with the id every mapping has
type Mapping = EventSourceMappingConfiguration & { UUID: string };

async function listMapping(ctx: Ctx, inputs: EventSourceInputs): Promise<Mapping | undefined> {
  try {
    const answer = await ctx.clients.lambda.send(
      new ListEventSourceMappingsCommand({
        FunctionName: inputs.functionName,
        EventSourceArn: inputs.queueArn,
      }),
    );
    return answer.EventSourceMappings?.find(
      (m): m is Mapping => m.UUID !== undefined && m.State !== 'Deleting',
    );
  } catch (error) {
    // the function itself is absent: so is its mapping
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}

// Tags are authorized on the mapping's own ARN, not the function's
// (docs/deployer-policy.json, ReadEventSourceMappings).
const onTheMapping = (action: string) => `check ${action} permission on the mapping`;

function toLive(found: Mapping, tags: Tags) {
  return {
    uuid: found.UUID,
    arn: found.EventSourceMappingArn,
    batchSize: found.BatchSize,
    maximumBatchingWindowInSeconds: found.MaximumBatchingWindowInSeconds,
    functionResponseTypes: found.FunctionResponseTypes ?? [],
    maximumConcurrency: found.ScalingConfig?.MaximumConcurrency,
    enabled: isEnabled(found.State),
    state: found.State,
    tags,
  };
}

export async function findEventSource(
  ctx: Ctx,
  inputs: EventSourceInputs,
): Promise<LiveEventSource | undefined> {
  const found = await listMapping(ctx, inputs);
  if (found === undefined) return undefined;
  const { UUID, EventSourceMappingArn: Resource } = found;
  // ListTags answers only once the mapping has an ARN (mappings created before tagging existed have none)
  if (Resource === undefined) return toLive(found, {});
  const { Tags = {} } = await ctx.clients.lambda
    .send(new ListTagsCommand({ Resource }))
    .catch((error: unknown) => {
      throw stepError(`read the tags of ${kind} ${UUID}`, error, onTheMapping('lambda:ListTags'));
    });
  return toLive(found, Tags);
}

export function eventSourceDrift(desired: DesiredEventSource, actual: LiveEventSource): FieldChange[] {
  const { functionName: _f, queueArn: _q, tags, ...managed } = desired;
  return [
    ...diffFields(managed, actual as unknown as Record<string, unknown>),
    ...(actual.arn === undefined ? [] : tagDrift(tags, actual.tags)),
  ];
}

// Polls the mapping every second, as its own step, until check answers true.
async function waitForMapping(ctx: Ctx, uuid: string, until: string, check: () => Promise<true | undefined>) {
  const what = `${kind} ${uuid} to ${until}`;
  await step(`wait for ${what}`, 'lambda:GetEventSourceMapping', () =>
    pollUntil(check, {
      what,
      timeoutMs: enabledTimeoutMs,
      intervalMs: 1_000,
      onProgress: reportElapsed(ctx.log, what),
    }),
  );
}

const waitEnabled = (ctx: Ctx, uuid: string) =>
  waitForMapping(ctx, uuid, 'become Enabled', async () => {
    const answer = await ctx.clients.lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }));
    if (answer.State === 'Enabled') return true;
    if (answer.State === 'Disabled') {
      throw stepError(`enable ${kind} ${uuid}`, answer.StateTransitionReason ?? 'it is Disabled');
    }
    return undefined;
  });

// the mapping keeps polling until it is gone: wait, so the queue is not deleted under it
const waitDeleted = (ctx: Ctx, uuid: string) =>
  waitForMapping(ctx, uuid, 'be deleted', async () => {
    try {
      await ctx.clients.lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }));
      return undefined;
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return true;
      throw error;
    }
  });

// A transitional state refuses changes with ResourceInUseException for a moment.
const whileBusy = <T>(uuid: string, send: () => Promise<T>) =>
  retryWhile(send, (error) => error instanceof ResourceInUseException, {
    what: `${kind} ${uuid} to settle`,
    timeoutMs: busyTimeoutMs,
  });

// what CreateEventSourceMapping and UpdateEventSourceMapping both set
const settings = (desired: DesiredEventSource) => ({
  BatchSize: desired.batchSize,
  MaximumBatchingWindowInSeconds: desired.maximumBatchingWindowInSeconds,
  FunctionResponseTypes: desired.functionResponseTypes,
  ScalingConfig: { MaximumConcurrency: desired.maximumConcurrency },
  Enabled: desired.enabled,
});

type NamedEventSource = DesiredEventSource & { name: string };

// A mapping has no name of its own: it is found by its function and queue.
function mapping(inputs: EventSourceInputs): Resource<NamedEventSource, LiveEventSource, { uuid: string }> {
  return {
    kind,
    permissions: {
      find: 'lambda:ListEventSourceMappings and lambda:ListTags',
      create: 'lambda:CreateEventSourceMapping and lambda:TagResource',
      update: 'lambda:UpdateEventSourceMapping',
      delete: 'lambda:DeleteEventSourceMapping',
    },
    find: (ctx) => findEventSource(ctx, inputs),
    drift: ({ name: _name, ...desired }, actual) => eventSourceDrift(desired, actual),
    async create(ctx, desired) {
      const created = await ctx.clients.lambda.send(
        new CreateEventSourceMappingCommand({
          FunctionName: desired.functionName,
          EventSourceArn: desired.queueArn,
          ...settings(desired),
          Tags: desired.tags,
        }),
      );
      const { UUID } = created;
      if (UUID === undefined) throw new Error('CreateEventSourceMapping returned no UUID');
      return toLive({ ...created, UUID }, desired.tags);
    },
    // a mapping for this function and queue exists (a concurrent run)
    alreadyExists: (error) => error instanceof ResourceConflictException,
    async update(ctx, desired, actual, drift) {
      const { uuid } = actual;
      if (drift.some((c) => c.field !== 'tags')) {
        await whileBusy(uuid, () =>
          ctx.clients.lambda.send(new UpdateEventSourceMappingCommand({ UUID: uuid, ...settings(desired) })),
        );
      }
      const missing = missingTags(desired.tags, actual.tags);
      if (actual.arn !== undefined && Object.keys(missing).length > 0) {
        await ctx.clients.lambda
          .send(new TagResourceCommand({ Resource: actual.arn, Tags: missing }))
          .catch((error: unknown) => {
            throw stepError(`tag ${kind} ${uuid}`, error, onTheMapping('lambda:TagResource'));
          });
      }
    },
    async wait(ctx, { name: _name, ...desired }, actual) {
      if (eventSourceDrift(desired, actual).length > 0 || actual.state !== 'Enabled') {
        await waitEnabled(ctx, actual.uuid);
      }
      return undefined;
    },
    outputs: (_ctx, _desired, actual) => ({ uuid: actual?.uuid ?? pending('event source mapping id') }),
  };
}

// the queue's name is the ARN's last part (arn:aws:sqs:region:account:name); a
// pending ARN in plan mode has none, and the name is the same either way
function mappingName(ctx: Ctx, inputs: EventSourceInputs): string {
  const queue = inputs.queueArn.startsWith('arn:') ? inputs.queueArn.split(':').pop() : ctx.names.queue;
  return `${inputs.functionName} ← ${queue}`;
}

export const ensureEventSource = (ctx: Ctx, inputs: EventSourceInputs) =>
  reconcile(ctx, mapping(inputs), { ...desiredEventSource(ctx, inputs), name: mappingName(ctx, inputs) });

// Deleting needs only the mapping's id: no tags are read. It is waited out,
// so the queue is not deleted while the mapping still polls it.
export const deleteEventSource = (ctx: Ctx, inputs: EventSourceInputs) =>
  destroy(
    ctx,
    {
      kind,
      permissions: { find: 'lambda:ListEventSourceMappings', delete: 'lambda:DeleteEventSourceMapping' },
      find: (ctx) => listMapping(ctx, inputs),
      remove: (ctx, _name, found) =>
        whileBusy(found.UUID, () =>
          ctx.clients.lambda.send(new DeleteEventSourceMappingCommand({ UUID: found.UUID })),
        ),
      isNotFound: (error) => error instanceof ResourceNotFoundException,
      waitGone: (ctx, _name, found) => waitDeleted(ctx, found.UUID),
    },
    mappingName(ctx, inputs),
  );
