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
import { arn } from '../../lib/names.ts';
import {
  type Ctx,
  destroy,
  diffFields,
  type FieldChange,
  missingTags,
  orAbsent,
  type Resource,
  reconcile,
} from '../../lib/reconcile.ts';
import { type PolicyDocument, parsePolicy, policyDocument, policyDrift } from '../policy.ts';
import { fromTagList, type Tags, tagDrift, toTagList } from '../tags.ts';

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

export type LiveRepository = NonNullable<Awaited<ReturnType<typeof findRepository>>>;

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
    repositoryPolicy: policyDocument({
      Sid: 'LambdaECRImageRetrievalPolicy',
      Effect: 'Allow',
      Principal: { Service: 'lambda.amazonaws.com' },
      Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
      Condition: { StringLike: { 'aws:sourceArn': arn(identity, 'lambda', 'function:*') } },
    }),
    tags: names.tags,
  };
}

async function describeRepository(ctx: Ctx, name: string): Promise<Repository | undefined> {
  const answer = await orAbsent(
    () => ctx.clients.ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] })),
    RepositoryNotFoundException,
  );
  return answer?.repositories?.[0];
}

async function findRepository(ctx: Ctx, name: string) {
  const { ecr } = ctx.clients;
  const found = await describeRepository(ctx, name);
  if (found?.repositoryArn === undefined) return undefined;
  // ECR answers a repository without a lifecycle policy or a repository policy
  // with these errors: the policy is absent, not the repository.
  const lifecycle = await orAbsent(
    () => ecr.send(new GetLifecyclePolicyCommand({ repositoryName: name })),
    LifecyclePolicyNotFoundException,
  );
  const policy = await orAbsent(
    () => ecr.send(new GetRepositoryPolicyCommand({ repositoryName: name })),
    RepositoryPolicyNotFoundException,
  );
  const { tags } = await ecr.send(new ListTagsForResourceCommand({ resourceArn: found.repositoryArn }));
  return {
    name,
    arn: found.repositoryArn,
    uri: found.repositoryUri ?? '',
    imageTagMutability: found.imageTagMutability,
    scanOnPush: found.imageScanningConfiguration?.scanOnPush ?? false,
    encryptionType: found.encryptionConfiguration?.encryptionType,
    lifecyclePolicy: parsePolicy(lifecycle?.lifecyclePolicyText),
    repositoryPolicy: parsePolicy(policy?.policyText),
    tags: fromTagList(tags),
  };
}

export function repositoryDrift(desired: DesiredRepository, actual: LiveRepository): FieldChange[] {
  const { imageTagMutability, scanOnPush, lifecyclePolicy, repositoryPolicy } = desired;
  return [
    ...diffFields({ imageTagMutability, scanOnPush }, actual),
    ...policyDrift('lifecyclePolicy', lifecyclePolicy, actual.lifecyclePolicy),
    ...policyDrift('repositoryPolicy', repositoryPolicy, actual.repositoryPolicy),
    ...tagDrift(desired.tags, actual.tags),
  ];
}

// The registry host follows the partition's DNS suffix (ECR endpoints table).
function repositoryUri(ctx: Ctx, name: string): string {
  const suffix = ctx.identity.partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `${ctx.identity.accountId}.dkr.ecr.${ctx.identity.region}.${suffix}/${name}`;
}

const repository: Resource<DesiredRepository, LiveRepository, { uri: string; arn: string }> = {
  kind: 'ecr repository',
  permissions: {
    find: 'ecr:DescribeRepositories, ecr:GetLifecyclePolicy, ecr:GetRepositoryPolicy and ecr:ListTagsForResource',
    create: 'ecr:CreateRepository and ecr:TagResource',
  },
  find: findRepository,
  drift: repositoryDrift,
  // CreateRepository takes no policies: the loop finds the repository again and puts them
  async create(ctx, desired) {
    await ctx.clients.ecr.send(
      new CreateRepositoryCommand({
        repositoryName: desired.name,
        imageTagMutability: desired.imageTagMutability,
        imageScanningConfiguration: { scanOnPush: desired.scanOnPush },
        encryptionConfiguration: { encryptionType: desired.encryptionType },
        tags: toTagList(desired.tags),
      }),
    );
    return undefined;
  },
  alreadyExists: (error) => error instanceof RepositoryAlreadyExistsException,
  writers: {
    imageTagMutability: {
      action: 'ecr:PutImageTagMutability',
      write: (ctx, { name: repositoryName, imageTagMutability }) =>
        ctx.clients.ecr.send(new PutImageTagMutabilityCommand({ repositoryName, imageTagMutability })),
    },
    scanOnPush: {
      action: 'ecr:PutImageScanningConfiguration',
      write: (ctx, { name: repositoryName, scanOnPush }) =>
        ctx.clients.ecr.send(
          new PutImageScanningConfigurationCommand({
            repositoryName,
            imageScanningConfiguration: { scanOnPush },
          }),
        ),
    },
    lifecyclePolicy: {
      action: 'ecr:PutLifecyclePolicy',
      write: (ctx, { name: repositoryName, lifecyclePolicy }) =>
        ctx.clients.ecr.send(
          new PutLifecyclePolicyCommand({
            repositoryName,
            lifecyclePolicyText: JSON.stringify(lifecyclePolicy),
          }),
        ),
    },
    repositoryPolicy: {
      action: 'ecr:SetRepositoryPolicy',
      write: (ctx, { name: repositoryName, repositoryPolicy }) =>
        ctx.clients.ecr.send(
          new SetRepositoryPolicyCommand({ repositoryName, policyText: JSON.stringify(repositoryPolicy) }),
        ),
    },
    tags: {
      action: 'ecr:TagResource',
      write: (ctx, desired, actual) =>
        ctx.clients.ecr.send(
          new TagResourceCommand({
            resourceArn: actual.arn,
            tags: toTagList(missingTags(desired.tags, actual.tags)),
          }),
        ),
    },
  },
  outputs(ctx, desired, actual) {
    if (actual === undefined) {
      return {
        uri: repositoryUri(ctx, desired.name),
        arn: arn(ctx.identity, 'ecr', `repository/${desired.name}`),
      };
    }
    if (actual.encryptionType !== desired.encryptionType) {
      // not fixable in place: say so rather than pretend
      ctx.log.warn(
        `ecr repository ${desired.name} is encrypted with ${actual.encryptionType}; ECR cannot change encryption after creation (delete the repository to recreate it with ${desired.encryptionType})`,
      );
    }
    return { uri: actual.uri, arn: actual.arn };
  },
};

export const ensureRepository = (ctx: Ctx) => reconcile(ctx, repository, desiredRepository(ctx));

// Deleting needs only to know the repository is there: no policies or tags are read.
// force: ECR refuses to delete a repository that still holds images
// (RepositoryNotEmptyException) unless asked to delete them too.
export const deleteRepository = (ctx: Ctx) =>
  destroy(
    ctx,
    {
      kind: repository.kind,
      permissions: { find: 'ecr:DescribeRepositories', delete: 'ecr:DeleteRepository' },
      find: describeRepository,
      remove: (ctx, name) =>
        ctx.clients.ecr.send(new DeleteRepositoryCommand({ repositoryName: name, force: true })),
      isNotFound: (error) => error instanceof RepositoryNotFoundException,
    },
    ctx.names.repository,
  );
