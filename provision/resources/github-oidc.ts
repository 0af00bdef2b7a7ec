import {
  CreateOpenIDConnectProviderCommand,
  DeleteOpenIDConnectProviderCommand,
  EntityAlreadyExistsException,
  GetOpenIDConnectProviderCommand,
  NoSuchEntityException,
  TagOpenIDConnectProviderCommand,
  UntagOpenIDConnectProviderCommand,
} from '@aws-sdk/client-iam';
import { stepError } from '../../lib/errors.ts';
import { arn, githubOidc } from '../../lib/names.ts';
import {
  Action,
  type Ctx,
  deleteFound,
  type FieldChange,
  isPlan,
  orAbsent,
  type Resource,
  reconcile,
  record,
  step,
} from '../../lib/reconcile.ts';
import { fromTagList, type Tags, toTagList } from '../tags.ts';

// GitHub Actions' OIDC identity provider in IAM: what lets generate.yml trade
// its run's token for the generator role's credentials, with no stored key.
// An account has at most one provider per issuer URL (CreateOpenIDConnectProvider
// API reference), shared by every stack and anything else of the account that
// uses GitHub, so up.ts finds it and creates it only when it is missing.
//
// Whose it is, decided by tags: a provider up.ts creates carries
// managed-by=ada-linecount, and every stack whose generator role trusts it
// adds used-by:<app>-<stage>. down.ts removes its own used-by tag and deletes
// the provider only when it carries managed-by=ada-linecount and no stack's
// used-by tag is left. A provider created any other way (no managed-by tag) is
// never tagged, changed or deleted: up.ts only reads it.
//
// No thumbprint is given: it is optional, and for GitHub IAM verifies the
// issuer's certificate with its own library of trusted root CAs instead
// (IAM API reference, CreateOpenIDConnectProvider and
// UpdateOpenIDConnectProviderThumbprint).

const kind = 'iam oidc provider';
export const managedBy = { key: 'managed-by', value: 'ada-linecount' } as const;
const usagePrefix = 'used-by:';

type ProviderContext = Pick<Ctx, 'identity' | 'names'>;

export function githubProviderArn(ctx: Pick<Ctx, 'identity'>): string {
  return arn(ctx.identity, 'iam', `oidc-provider/${githubOidc.host}`, false);
}

export function usageTag(ctx: ProviderContext): Tags {
  return { [`${usagePrefix}${ctx.names.base}`]: ctx.names.generatorRole };
}

export interface LiveProvider {
  arn: string;
  clientIds: string[];
  tags: Tags;
}

export const isOurs = (provider: LiveProvider) => provider.tags[managedBy.key] === managedBy.value;

// the stacks that rely on the provider, by their used-by tags
export const usersOf = (provider: LiveProvider) =>
  Object.keys(provider.tags)
    .filter((key) => key.startsWith(usagePrefix))
    .map((key) => key.slice(usagePrefix.length));

async function readProvider(ctx: Ctx): Promise<LiveProvider | undefined> {
  const { iam } = ctx.clients;
  const providerArn = githubProviderArn(ctx);
  const provider = await orAbsent(
    () => iam.send(new GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: providerArn })),
    NoSuchEntityException,
  );
  if (provider === undefined) return undefined;
  return { arn: providerArn, clientIds: provider.ClientIDList ?? [], tags: fromTagList(provider.Tags) };
}

// The audience configure-aws-credentials asks for must be one of the
// provider's client ids, or STS refuses every token (IAM User Guide, "Create
// an OpenID Connect (OIDC) identity provider in IAM"); ours must list this
// stack among its users.
export function providerDrift(ctx: ProviderContext, actual: LiveProvider): FieldChange[] {
  return usageDrift(usageTag(ctx), actual);
}

function usageDrift(usage: Tags, actual: LiveProvider): FieldChange[] {
  const changes: FieldChange[] = [];
  if (!actual.clientIds.includes(githubOidc.audience)) {
    changes.push({
      field: 'ClientIDList',
      from: actual.clientIds,
      to: [...actual.clientIds, githubOidc.audience],
    });
  }
  const [key = ''] = Object.keys(usage);
  if (isOurs(actual) && actual.tags[key] === undefined) {
    changes.push({ field: 'tags', from: undefined, to: usage });
  }
  return changes;
}

interface ProviderSpec {
  name: string;
  // this stack's used-by tag
  usage: Tags;
}

const provider: Resource<ProviderSpec, LiveProvider, { arn: string }> = {
  kind,
  permissions: {
    find: 'iam:GetOpenIDConnectProvider',
    create: 'iam:CreateOpenIDConnectProvider and iam:TagOpenIDConnectProvider',
    update: 'iam:TagOpenIDConnectProvider',
  },
  // A provider that does not accept the audience is not ours to widen, and
  // not something up.ts does to a provider it shares: up stops, in a plan too.
  async find(ctx) {
    const found = await readProvider(ctx);
    if (found !== undefined && !found.clientIds.includes(githubOidc.audience)) {
      throw stepError(
        `use ${kind} ${found.arn}`,
        `it does not accept the audience ${githubOidc.audience}`,
        `an administrator adds it: aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn ${found.arn} --client-id ${githubOidc.audience}`,
      );
    }
    if (found !== undefined && !isOurs(found) && !isPlan(ctx)) {
      ctx.log.info(
        `${kind} ${githubOidc.host} was not created by up.ts: it is used as it is, and down.ts leaves it`,
      );
    }
    return found;
  },
  drift: (desired, actual) => usageDrift(desired.usage, actual),
  async create(ctx, desired) {
    const tags = { [managedBy.key]: managedBy.value, ...desired.usage };
    await ctx.clients.iam.send(
      new CreateOpenIDConnectProviderCommand({
        Url: `https://${githubOidc.host}`,
        ClientIDList: [githubOidc.audience],
        Tags: toTagList(tags),
      }),
    );
    return { arn: githubProviderArn(ctx), clientIds: [githubOidc.audience], tags };
  },
  // another stack's up created it a moment ago: use it as found
  alreadyExists: (error) => error instanceof EntityAlreadyExistsException,
  async update(ctx, desired, actual) {
    await ctx.clients.iam.send(
      new TagOpenIDConnectProviderCommand({
        OpenIDConnectProviderArn: actual.arn,
        Tags: toTagList(desired.usage),
      }),
    );
  },
  outputs: (ctx) => ({ arn: githubProviderArn(ctx) }),
};

export const ensureGithubProvider = (ctx: Ctx) =>
  reconcile(ctx, provider, { name: githubOidc.host, usage: usageTag(ctx) });

// This stack stops using the provider; the provider goes with the last stack
// that used it, and only if up.ts created it.
export async function deleteGithubProvider(ctx: Ctx): Promise<void> {
  const OpenIDConnectProviderArn = githubProviderArn(ctx);
  const name = githubOidc.host;
  const actual = await step(`read ${kind} ${OpenIDConnectProviderArn}`, 'iam:GetOpenIDConnectProvider', () =>
    readProvider(ctx),
  );
  if (actual === undefined || !isOurs(actual)) {
    record(ctx, { kind, name, action: Action.absent });
    return;
  }
  const [key = ''] = Object.keys(usageTag(ctx));
  const others = usersOf(actual).filter((user) => user !== ctx.names.base);
  if (others.length > 0) {
    const using = actual.tags[key] !== undefined;
    record(ctx, {
      kind,
      name,
      action: using ? Action.update : Action.unchanged,
      fields: using ? [{ field: 'tags', from: { [key]: actual.tags[key] }, to: undefined }] : [],
    });
    if (using && !isPlan(ctx)) {
      await step(`untag ${kind} ${name}`, 'iam:UntagOpenIDConnectProvider', () =>
        ctx.clients.iam.send(
          new UntagOpenIDConnectProviderCommand({ OpenIDConnectProviderArn, TagKeys: [key] }),
        ),
      );
      ctx.log.info(`${kind} ${name} kept: still used by ${others.join(', ')}`);
    }
    return;
  }
  await deleteFound(ctx, {
    kind,
    name,
    found: true,
    remove: () => ctx.clients.iam.send(new DeleteOpenIDConnectProviderCommand({ OpenIDConnectProviderArn })),
    isNotFound: (error) => error instanceof NoSuchEntityException,
    what: `${kind} ${name}`,
    hint: 'check iam:DeleteOpenIDConnectProvider permission',
  });
}
