import { randomBytes } from 'node:crypto';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RestoreSecretCommand,
} from '@aws-sdk/client-secrets-manager';
import { type Ctx, destroy, orAbsent, pending, type Resource, reconcile, step } from '../../lib/reconcile.ts';
import { type Tags, toTagList } from '../tags.ts';

// The cache's AUTH token, generated once and kept in Secrets Manager; later
// runs reuse it. It is never logged or recorded: changes name the secret, never its value.

// ElastiCache AUTH tokens: 16-128 printable characters, no spaces, `"`, `/`
// or `@` (CreateReplicationGroup AuthToken). Letters and digits only keep it
// safe in URLs and shells too; 48 of them carry ~285 bits.
export const authTokenLength = 48;
const tokenAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

// A deleted secret can be restored for this many days (DeleteSecret allows
// 7-30): the shortest, so a torn-down stack stops showing up soon, yet long
// enough to undo a mistaken teardown.
export const secretRecoveryDays = 7;

export function generateAuthToken(length = authTokenLength): string {
  let token = '';
  while (token.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // rejection sampling keeps every character equally likely (248 = 4 × 62)
      if (byte < 248 && token.length < length) token += tokenAlphabet[byte % tokenAlphabet.length];
    }
  }
  return token;
}

interface SecretSpec {
  name: string;
  description: string;
  tags: Tags;
}

export interface AuthSecret {
  arn: string;
  // the token, when this run created the secret (a group that already exists lost its old one)
  created?: string;
}

interface SecretState extends AuthSecret {
  // scheduled for deletion by an earlier teardown
  deleted: boolean;
}

const authSecret: Resource<SecretSpec, SecretState, AuthSecret> = {
  kind: 'secret',
  permissions: {
    find: 'secretsmanager:DescribeSecret',
    create: 'secretsmanager:CreateSecret',
    update: 'secretsmanager:RestoreSecret',
    delete: 'secretsmanager:DeleteSecret',
  },
  async find(ctx, name) {
    const secret = await orAbsent(
      () => ctx.clients.secretsManager.send(new DescribeSecretCommand({ SecretId: name })),
      ResourceNotFoundException,
    );
    return secret && { arn: secret.ARN ?? '', deleted: secret.DeletedDate !== undefined };
  },
  // restoring the secret restores the token with it
  drift: (_desired, actual) =>
    actual.deleted ? [{ field: 'scheduledForDeletion', from: true, to: false }] : [],
  async create(ctx, desired) {
    const token = generateAuthToken();
    const created = await ctx.clients.secretsManager.send(
      new CreateSecretCommand({
        Name: desired.name,
        Description: desired.description,
        SecretString: token,
        Tags: toTagList(desired.tags),
      }),
    );
    return { arn: created.ARN ?? '', deleted: false, created: token };
  },
  alreadyExists: (error) => error instanceof ResourceExistsException,
  async update(ctx, desired) {
    await ctx.clients.secretsManager.send(new RestoreSecretCommand({ SecretId: desired.name }));
  },
  outputs: (_ctx, _desired, actual) =>
    actual === undefined
      ? { arn: pending('cache AUTH secret ARN') }
      : { arn: actual.arn, ...(actual.created === undefined ? {} : { created: actual.created }) },
  isNotFound: (error) => error instanceof ResourceNotFoundException,
};

export const ensureAuthSecret = (ctx: Ctx): Promise<AuthSecret> =>
  reconcile(ctx, authSecret, {
    name: ctx.names.cacheAuthSecret,
    description: `AUTH token of ElastiCache replication group ${ctx.names.cache}`,
    tags: ctx.names.tags,
  });

// force: at once instead of after the recovery window
export const deleteAuthSecret = (ctx: Ctx, force: boolean) =>
  destroy(
    ctx,
    {
      ...authSecret,
      // a secret already scheduled for deletion is as good as gone
      find: async (ctx, name) => {
        const secret = await authSecret.find(ctx, name);
        return secret?.deleted ? undefined : secret;
      },
      remove: (ctx, SecretId) =>
        ctx.clients.secretsManager.send(
          new DeleteSecretCommand(
            force
              ? { SecretId, ForceDeleteWithoutRecovery: true }
              : { SecretId, RecoveryWindowInDays: secretRecoveryDays },
          ),
        ),
    },
    ctx.names.cacheAuthSecret,
  );

export const readAuthToken = (ctx: Ctx, arn: string): Promise<string> =>
  step(`read the cache AUTH token from ${arn}`, 'secretsmanager:GetSecretValue', async () => {
    const { SecretString } = await ctx.clients.secretsManager.send(
      new GetSecretValueCommand({ SecretId: arn }),
    );
    if (!SecretString) throw new Error('the secret has no string value');
    return SecretString;
  });
