import {
  CreateRepositoryCommand,
  DeleteRepositoryCommand,
  DescribeRepositoriesCommand,
  EncryptionType,
  GetLifecyclePolicyCommand,
  GetRepositoryPolicyCommand,
  ImageTagMutability,
  LifecyclePolicyNotFoundException,
  ListTagsForResourceCommand,
  PutImageScanningConfigurationCommand,
  PutImageTagMutabilityCommand,
  PutLifecyclePolicyCommand,
  type Repository,
  RepositoryAlreadyExistsException,
  RepositoryNotFoundException,
  RepositoryPolicyNotFoundException,
  SetRepositoryPolicyCommand,
  TagResourceCommand,
} from '@aws-sdk/client-ecr';
import { stepError } from '../../lib/errors.ts';
import { arn } from '../../lib/names.ts';
import {
  Action,
  type Ctx,
  deleteFound,
  diffFields,
  type FieldChange,
  isPlan,
  missingTags,
  record,
} from '../../lib/reconcile.ts';
import { type PolicyDocument, parsePolicy, samePolicy } from '../policy.ts';
import { fromTagList, type Tags, tagDrift, toTagList } from '../tags.ts';

const kind = 'ecr repository';

export interface DesiredRepository {
  name: string;
  // Tags never move: the image builder tags by content digest and the function
  // is deployed by digest, so an overwritten tag could only be a mistake.
  imageTagMutability: ImageTagMutability;
  scanOnPush: boolean;
  // Set at creation only (ECR has no API to change a repository's encryption).
  encryptionType: EncryptionType;
  lifecyclePolicy: unknown;
  repositoryPolicy: PolicyDocument;
  tags: Tags;
}

export interface LiveRepository {
  name: string;
  arn: string;
  uri: string;
  imageTagMutability: string | undefined;
  scanOnPush: boolean;
  encryptionType: string | undefined;
  lifecyclePolicy: unknown;
  repositoryPolicy: unknown;
  tags: Tags;
}

export function desiredRepository(ctx: Pick<Ctx, 'config' | 'identity' | 'names'>): DesiredRepository {
  const { identity, names, config } = ctx;
  return {
    name: names.repository,
    imageTagMutability: ImageTagMutability.IMMUTABLE,
    scanOnPush: true,
    encryptionType: EncryptionType.AES256,
    lifecyclePolicy: {
      rules: [
        {
          rulePriority: 1,
          description: `keep the last ${config.provision.ecrKeepImages} images`,
          selection: {
            tagStatus: 'any',
            countType: 'imageCountMoreThan',
            countNumber: config.provision.ecrKeepImages,
          },
          action: { type: 'expire' },
        },
      ],
    },
    // Lambda pulls the image with its service principal; the source ARN keeps
    // that to this account's functions in this region (Lambda developer guide,
    // "Amazon ECR permissions"). With this statement present Lambda does not
    // rewrite the repository policy itself on CreateFunction.
    repositoryPolicy: {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'LambdaECRImageRetrievalPolicy',
          Effect: 'Allow',
          Principal: { Service: 'lambda.amazonaws.com' },
          Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
          Condition: { StringLike: { 'aws:sourceArn': arn(identity, 'lambda', 'function:*') } },
        },
      ],
    },
    tags: names.tags,
  };
}

async function describeRepository(ctx: Ctx): Promise<Repository | undefined> {
  const name = ctx.names.repository;
  try {
    const answer = await ctx.clients.ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] }));
    return answer.repositories?.[0];
  } catch (error) {
    if (error instanceof RepositoryNotFoundException) return undefined;
    throw stepError(`describe ${kind} ${name}`, error, 'check ecr:DescribeRepositories permission');
  }
}

export async function findRepository(ctx: Ctx): Promise<LiveRepository | undefined> {
  const { ecr } = ctx.clients;
  const name = ctx.names.repository;
  const found = await describeRepository(ctx);
  if (found?.repositoryArn === undefined) return undefined;
  let lifecyclePolicy: unknown;
  try {
    const answer = await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: name }));
    lifecyclePolicy = parsePolicy(answer.lifecyclePolicyText);
  } catch (error) {
    if (!(error instanceof LifecyclePolicyNotFoundException)) {
      throw stepError(`read the lifecycle policy of ${kind} ${name}`, error);
    }
  }
  let repositoryPolicy: unknown;
  try {
    const answer = await ecr.send(new GetRepositoryPolicyCommand({ repositoryName: name }));
    repositoryPolicy = parsePolicy(answer.policyText);
  } catch (error) {
    if (!(error instanceof RepositoryPolicyNotFoundException)) {
      throw stepError(`read the policy of ${kind} ${name}`, error);
    }
  }
  const { tags } = await ecr.send(new ListTagsForResourceCommand({ resourceArn: found.repositoryArn }));
  return {
    name,
    arn: found.repositoryArn,
    uri: found.repositoryUri ?? '',
    imageTagMutability: found.imageTagMutability,
    scanOnPush: found.imageScanningConfiguration?.scanOnPush ?? false,
    encryptionType: found.encryptionConfiguration?.encryptionType,
    lifecyclePolicy,
    repositoryPolicy,
    tags: fromTagList(tags),
  };
}

export function repositoryDrift(desired: DesiredRepository, actual: LiveRepository): FieldChange[] {
  const changes = diffFields(
    { imageTagMutability: desired.imageTagMutability, scanOnPush: desired.scanOnPush },
    { imageTagMutability: actual.imageTagMutability, scanOnPush: actual.scanOnPush },
  );
  if (!samePolicy(desired.lifecyclePolicy, actual.lifecyclePolicy ?? null)) {
    changes.push({ field: 'lifecyclePolicy', from: actual.lifecyclePolicy, to: desired.lifecyclePolicy });
  }
  if (!samePolicy(desired.repositoryPolicy, actual.repositoryPolicy ?? null)) {
    changes.push({ field: 'repositoryPolicy', from: actual.repositoryPolicy, to: desired.repositoryPolicy });
  }
  return [...changes, ...tagDrift(desired.tags, actual.tags)];
}

// The registry host follows the partition's DNS suffix (ECR endpoints table).
function repositoryUri(ctx: Ctx, name: string): string {
  const suffix = ctx.identity.partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `${ctx.identity.accountId}.dkr.ecr.${ctx.identity.region}.${suffix}/${name}`;
}

export async function ensureRepository(ctx: Ctx): Promise<{ uri: string; arn: string }> {
  const desired = desiredRepository(ctx);
  let actual = await findRepository(ctx);
  if (actual === undefined) {
    record(ctx, { kind, name: desired.name, action: Action.create });
    if (isPlan(ctx)) {
      return {
        uri: repositoryUri(ctx, desired.name),
        arn: arn(ctx.identity, 'ecr', `repository/${desired.name}`),
      };
    }
    actual = await createRepository(ctx, desired);
  } else {
    const changes = repositoryDrift(desired, actual);
    if (actual.encryptionType !== desired.encryptionType) {
      // not fixable in place: say so rather than pretend
      ctx.log.warn(
        `${kind} ${desired.name} is encrypted with ${actual.encryptionType}; ECR cannot change encryption after creation (delete the repository to recreate it with ${desired.encryptionType})`,
      );
    }
    record(ctx, {
      kind,
      name: desired.name,
      action: changes.length ? Action.update : Action.unchanged,
      fields: changes,
    });
    if (!isPlan(ctx)) await updateRepository(ctx, desired, actual, changes);
  }
  return { uri: actual.uri, arn: actual.arn };
}

async function createRepository(ctx: Ctx, desired: DesiredRepository): Promise<LiveRepository> {
  const { ecr } = ctx.clients;
  try {
    await ecr.send(
      new CreateRepositoryCommand({
        repositoryName: desired.name,
        imageTagMutability: desired.imageTagMutability,
        imageScanningConfiguration: { scanOnPush: desired.scanOnPush },
        encryptionConfiguration: { encryptionType: desired.encryptionType },
        tags: toTagList(desired.tags),
      }),
    );
  } catch (error) {
    // someone else created it meanwhile: reconcile what is there
    if (!(error instanceof RepositoryAlreadyExistsException)) {
      throw stepError(
        `create ${kind} ${desired.name}`,
        error,
        'check ecr:CreateRepository and ecr:TagResource permissions',
      );
    }
  }
  const created = await findRepository(ctx);
  if (created === undefined) throw stepError(`find ${kind} ${desired.name} after creating it`, 'not found');
  await updateRepository(ctx, desired, created, repositoryDrift(desired, created));
  return created;
}

async function updateRepository(
  ctx: Ctx,
  desired: DesiredRepository,
  actual: LiveRepository,
  changes: FieldChange[],
): Promise<void> {
  const { ecr } = ctx.clients;
  const name = desired.name;
  const fields = new Set(changes.map((c) => c.field));
  try {
    if (fields.has('imageTagMutability')) {
      await ecr.send(
        new PutImageTagMutabilityCommand({
          repositoryName: name,
          imageTagMutability: desired.imageTagMutability,
        }),
      );
    }
    if (fields.has('scanOnPush')) {
      await ecr.send(
        new PutImageScanningConfigurationCommand({
          repositoryName: name,
          imageScanningConfiguration: { scanOnPush: desired.scanOnPush },
        }),
      );
    }
    if (fields.has('lifecyclePolicy')) {
      await ecr.send(
        new PutLifecyclePolicyCommand({
          repositoryName: name,
          lifecyclePolicyText: JSON.stringify(desired.lifecyclePolicy),
        }),
      );
    }
    if (fields.has('repositoryPolicy')) {
      await ecr.send(
        new SetRepositoryPolicyCommand({
          repositoryName: name,
          policyText: JSON.stringify(desired.repositoryPolicy),
        }),
      );
    }
    if (fields.has('tags')) {
      await ecr.send(
        new TagResourceCommand({
          resourceArn: actual.arn,
          tags: toTagList(missingTags(desired.tags, actual.tags)),
        }),
      );
    }
  } catch (error) {
    throw stepError(
      `update ${kind} ${name}`,
      error,
      'check ecr:Put*, ecr:SetRepositoryPolicy and ecr:TagResource permissions',
    );
  }
}

// force: ECR refuses to delete a repository that still holds images
// (RepositoryNotEmptyException) unless asked to delete them too.
export async function deleteRepository(ctx: Ctx): Promise<void> {
  const name = ctx.names.repository;
  await deleteFound(ctx, {
    kind,
    name,
    found: (await describeRepository(ctx)) !== undefined,
    remove: () => ctx.clients.ecr.send(new DeleteRepositoryCommand({ repositoryName: name, force: true })),
    isNotFound: (error) => error instanceof RepositoryNotFoundException,
    what: `${kind} ${name}`,
    hint: 'check ecr:DeleteRepository permission',
  });
}
