import {
  type CreateOpenIDConnectProviderRequest,
  type CreatePolicyRequest,
  type CreatePolicyVersionRequest,
  type CreateRoleRequest,
  DeleteConflictException,
  type DeleteOpenIDConnectProviderRequest,
  type DeletePolicyVersionRequest,
  type DeleteRolePermissionsBoundaryRequest,
  type DeleteRolePolicyRequest,
  type DeleteRoleRequest,
  type DetachRolePolicyRequest,
  EntityAlreadyExistsException,
  type GetOpenIDConnectProviderRequest,
  type GetPolicyRequest,
  type GetPolicyVersionRequest,
  type GetRolePolicyRequest,
  type GetRoleRequest,
  IAMClient,
  InvalidInputException,
  LimitExceededException,
  type ListAttachedRolePoliciesRequest,
  type ListPolicyVersionsRequest,
  type ListRolePoliciesRequest,
  type ListRoleTagsRequest,
  MalformedPolicyDocumentException,
  NoSuchEntityException,
  type PutRolePermissionsBoundaryRequest,
  type PutRolePolicyRequest,
  type SimulatePrincipalPolicyRequest,
  type TagOpenIDConnectProviderRequest,
  type TagRoleRequest,
  type UntagOpenIDConnectProviderRequest,
  type UpdateAssumeRolePolicyRequest,
} from '@aws-sdk/client-iam';
import { PolicyFile, readPolicyFile } from '../../lib/policy-files.ts';
import { decide, type PolicyDocument } from '../support/iam/evaluate.ts';
import { type InstalledFake, installHandlers } from './calls.ts';

// A stateful IAM for what this project does with it: roles with one inline
// policy and a permissions boundary, customer managed policies and their
// versions (the boundary), the account's OIDC providers, and
// SimulatePrincipalPolicy for the permission check before a run. Like the
// service, it returns policy documents URL-encoded (RFC 3986), refuses to
// delete a role that still has policies, refuses a boundary that is not a
// managed policy it has, keeps at most five versions of a policy, and answers
// SimulatePrincipalPolicy for a role from that role's own policies (decided by
// @cloud-copilot/iam-simulate, as the IAM tests decide every request).
// AWS managed policies (arn:aws:iam::aws:policy/...) are attached by name only
// and take no part in a simulation.

export interface FakeRole {
  name: string;
  arn: string;
  roleId: string;
  createDate: Date;
  description: string | undefined;
  // as submitted; encoded on the way out
  trustPolicy: string;
  inlinePolicies: Map<string, string>;
  attachedPolicies: string[];
  tags: Map<string, string>;
  permissionsBoundary?: string | undefined;
}

export interface FakePolicyVersion {
  versionId: string;
  document: string;
  isDefault: boolean;
  createDate: Date;
}

export interface FakeManagedPolicy {
  arn: string;
  name: string;
  versions: FakePolicyVersion[];
  tags: Map<string, string>;
  nextVersion: number;
}

export interface FakeOidcProvider {
  arn: string;
  url: string;
  clientIds: string[];
  thumbprints: string[];
  tags: Map<string, string>;
  createDate: Date;
}

export interface IamFake extends InstalledFake {
  roles: Map<string, FakeRole>;
  policies: Map<string, FakeManagedPolicy>;
  providers: Map<string, FakeOidcProvider>;
  // the default version of a managed policy, parsed
  policyDocument(arn: string): PolicyDocument | undefined;
  taggedResources(): { arn: string; tags: Record<string, string> }[];
}

export interface IamFakeOptions {
  accountId?: string;
  // apps whose permissions boundary exists, as provision/bootstrap.ts makes it
  // (docs/boundary-policy.json as <app>-boundary); by default the default APP's
  boundaryApps?: string[];
}

const metadata = { $metadata: {} };
// IAM keeps at most five versions of a managed policy (CreatePolicyVersion)
const maxVersions = 5;

function checkDocument(document: string | undefined, what: string): string {
  try {
    JSON.parse(document ?? '');
  } catch {
    throw new MalformedPolicyDocumentException({ message: `${what} is not valid JSON`, ...metadata });
  }
  return document as string;
}

const noSuch = (message: string) => new NoSuchEntityException({ message, ...metadata });

export function installIamFake(options: IamFakeOptions = {}): IamFake {
  const accountId = options.accountId ?? '000000000000';
  const roles = new Map<string, FakeRole>();
  const accountKeyPolicy = {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${accountId}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
    ],
  };
  const policies = new Map<string, FakeManagedPolicy>();
  const providers = new Map<string, FakeOidcProvider>();
  let nextId = 1;

  function role(name: string | undefined): FakeRole {
    const found = roles.get(name ?? '');
    if (found === undefined) throw noSuch(`The role with name ${name} cannot be found.`);
    return found;
  }

  function policy(arn: string | undefined): FakeManagedPolicy {
    const found = policies.get(arn ?? '');
    if (found === undefined) throw noSuch(`Policy ${arn} does not exist or is not attachable.`);
    return found;
  }

  function provider(arn: string | undefined): FakeOidcProvider {
    const found = providers.get(arn ?? '');
    if (found === undefined) throw noSuch(`OpenIDConnect Provider not found for arn ${arn}`);
    return found;
  }

  function createPolicy(name: string, document: string, tags: Map<string, string> = new Map()) {
    const arn = `arn:aws:iam::${accountId}:policy/${name}`;
    if (policies.has(arn)) {
      throw new EntityAlreadyExistsException({
        message: `A policy called ${name} already exists. Duplicate names are not allowed.`,
        ...metadata,
      });
    }
    const created: FakeManagedPolicy = {
      arn,
      name,
      versions: [{ versionId: 'v1', document, isDefault: true, createDate: new Date() }],
      tags,
      nextVersion: 2,
    };
    policies.set(arn, created);
    return created;
  }

  function defaultDocument(arn: string): PolicyDocument | undefined {
    const found = policies.get(arn)?.versions.find((v) => v.isDefault);
    return found === undefined ? undefined : (JSON.parse(found.document) as PolicyDocument);
  }

  for (const app of options.boundaryApps ?? ['ada-linecount']) {
    const document = readPolicyFile(PolicyFile.boundary, {
      partition: 'aws',
      region: '*',
      accountId,
      app,
      stage: '*',
    });
    createPolicy(`${app}-boundary`, JSON.stringify(document));
  }

  // A boundary must be a managed policy IAM has (CreateRole, PutRolePermissionsBoundary)
  function checkBoundary(arn: string | undefined): string | undefined {
    if (arn === undefined) return undefined;
    if (arn.startsWith(`arn:aws:iam::aws:policy/`)) return arn;
    policy(arn);
    return arn;
  }

  const installed = installHandlers(IAMClient, 'iam', {
    CreateRole(input: CreateRoleRequest) {
      const name = input.RoleName ?? '';
      if (roles.has(name)) {
        throw new EntityAlreadyExistsException({
          message: `Role with name ${name} already exists.`,
          ...metadata,
        });
      }
      const created: FakeRole = {
        name,
        arn: `arn:aws:iam::${accountId}:role${input.Path ?? '/'}${name}`,
        roleId: `AROA${String(nextId++).padStart(17, '0')}`,
        createDate: new Date(),
        description: input.Description,
        trustPolicy: checkDocument(input.AssumeRolePolicyDocument, 'AssumeRolePolicyDocument'),
        inlinePolicies: new Map(),
        attachedPolicies: [],
        tags: new Map((input.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
        permissionsBoundary: checkBoundary(input.PermissionsBoundary),
      };
      roles.set(name, created);
      return { Role: describe(created) };
    },
    GetRole(input: GetRoleRequest) {
      return { Role: describe(role(input.RoleName)) };
    },
    UpdateAssumeRolePolicy(input: UpdateAssumeRolePolicyRequest) {
      role(input.RoleName).trustPolicy = checkDocument(input.PolicyDocument, 'PolicyDocument');
      return {};
    },
    PutRolePolicy(input: PutRolePolicyRequest) {
      role(input.RoleName).inlinePolicies.set(
        input.PolicyName ?? '',
        checkDocument(input.PolicyDocument, 'PolicyDocument'),
      );
      return {};
    },
    GetRolePolicy(input: GetRolePolicyRequest) {
      const document = role(input.RoleName).inlinePolicies.get(input.PolicyName ?? '');
      if (document === undefined) {
        throw noSuch(`The role policy with name ${input.PolicyName} cannot be found.`);
      }
      return {
        RoleName: input.RoleName,
        PolicyName: input.PolicyName,
        PolicyDocument: encodeURIComponent(document),
      };
    },
    ListRolePolicies(input: ListRolePoliciesRequest) {
      return { PolicyNames: [...role(input.RoleName).inlinePolicies.keys()], IsTruncated: false };
    },
    DeleteRolePolicy(input: DeleteRolePolicyRequest) {
      const found = role(input.RoleName);
      if (!found.inlinePolicies.delete(input.PolicyName ?? '')) {
        throw noSuch(`The role policy ${input.PolicyName} cannot be found.`);
      }
      return {};
    },
    ListAttachedRolePolicies(input: ListAttachedRolePoliciesRequest) {
      return {
        AttachedPolicies: role(input.RoleName).attachedPolicies.map((PolicyArn) => ({
          PolicyArn,
          PolicyName: PolicyArn.split('/').pop(),
        })),
        IsTruncated: false,
      };
    },
    DetachRolePolicy(input: DetachRolePolicyRequest) {
      const found = role(input.RoleName);
      found.attachedPolicies = found.attachedPolicies.filter((a) => a !== input.PolicyArn);
      return {};
    },
    PutRolePermissionsBoundary(input: PutRolePermissionsBoundaryRequest) {
      role(input.RoleName).permissionsBoundary = checkBoundary(input.PermissionsBoundary);
      return {};
    },
    DeleteRolePermissionsBoundary(input: DeleteRolePermissionsBoundaryRequest) {
      role(input.RoleName).permissionsBoundary = undefined;
      return {};
    },
    ListRoleTags(input: ListRoleTagsRequest) {
      return {
        Tags: [...role(input.RoleName).tags].map(([Key, Value]) => ({ Key, Value })),
        IsTruncated: false,
      };
    },
    TagRole(input: TagRoleRequest) {
      const found = role(input.RoleName);
      for (const tag of input.Tags ?? []) found.tags.set(tag.Key ?? '', tag.Value ?? '');
      return {};
    },
    DeleteRole(input: DeleteRoleRequest) {
      const found = role(input.RoleName);
      if (found.inlinePolicies.size > 0 || found.attachedPolicies.length > 0) {
        throw new DeleteConflictException({
          message: 'Cannot delete entity, must delete policies first.',
          ...metadata,
        });
      }
      roles.delete(found.name);
      return {};
    },

    CreatePolicy(input: CreatePolicyRequest) {
      const created = createPolicy(
        input.PolicyName ?? '',
        checkDocument(input.PolicyDocument, 'PolicyDocument'),
        new Map((input.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
      );
      return { Policy: describePolicy(created) };
    },
    GetPolicy(input: GetPolicyRequest) {
      return { Policy: describePolicy(policy(input.PolicyArn)) };
    },
    GetPolicyVersion(input: GetPolicyVersionRequest) {
      const found = policy(input.PolicyArn).versions.find((v) => v.versionId === input.VersionId);
      if (found === undefined)
        throw noSuch(`Policy ${input.PolicyArn} version ${input.VersionId} does not exist.`);
      return {
        PolicyVersion: {
          Document: encodeURIComponent(found.document),
          VersionId: found.versionId,
          IsDefaultVersion: found.isDefault,
          CreateDate: found.createDate,
        },
      };
    },
    ListPolicyVersions(input: ListPolicyVersionsRequest) {
      return {
        Versions: policy(input.PolicyArn).versions.map((v) => ({
          VersionId: v.versionId,
          IsDefaultVersion: v.isDefault,
          CreateDate: v.createDate,
        })),
        IsTruncated: false,
      };
    },
    CreatePolicyVersion(input: CreatePolicyVersionRequest) {
      const found = policy(input.PolicyArn);
      if (found.versions.length >= maxVersions) {
        throw new LimitExceededException({
          message: `A managed policy can have up to ${maxVersions} versions. Before you create a new version, you must delete an existing version.`,
          ...metadata,
        });
      }
      const version: FakePolicyVersion = {
        versionId: `v${found.nextVersion++}`,
        document: checkDocument(input.PolicyDocument, 'PolicyDocument'),
        isDefault: false,
        createDate: new Date(),
      };
      if (input.SetAsDefault) {
        for (const v of found.versions) v.isDefault = false;
        version.isDefault = true;
      }
      found.versions.push(version);
      return { PolicyVersion: { VersionId: version.versionId, IsDefaultVersion: version.isDefault } };
    },
    DeletePolicyVersion(input: DeletePolicyVersionRequest) {
      const found = policy(input.PolicyArn);
      const version = found.versions.find((v) => v.versionId === input.VersionId);
      if (version === undefined) throw noSuch(`Policy version ${input.VersionId} does not exist.`);
      if (version.isDefault) {
        throw new DeleteConflictException({
          message: 'Cannot delete the default version of a policy.',
          ...metadata,
        });
      }
      found.versions = found.versions.filter((v) => v !== version);
      return {};
    },

    CreateOpenIDConnectProvider(input: CreateOpenIDConnectProviderRequest) {
      const url = input.Url ?? '';
      if (!url.startsWith('https://')) {
        throw new InvalidInputException({ message: 'The URL must begin with https://', ...metadata });
      }
      const arn = `arn:aws:iam::${accountId}:oidc-provider/${url.slice('https://'.length)}`;
      if (providers.has(arn)) {
        throw new EntityAlreadyExistsException({
          message: `Provider with url ${url} already exists.`,
          ...metadata,
        });
      }
      providers.set(arn, {
        arn,
        url,
        clientIds: [...(input.ClientIDList ?? [])],
        thumbprints: [...(input.ThumbprintList ?? [])],
        tags: new Map((input.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
        createDate: new Date(),
      });
      return { OpenIDConnectProviderArn: arn };
    },
    GetOpenIDConnectProvider(input: GetOpenIDConnectProviderRequest) {
      const found = provider(input.OpenIDConnectProviderArn);
      return {
        Url: found.url.slice('https://'.length),
        ClientIDList: [...found.clientIds],
        ThumbprintList: [...found.thumbprints],
        CreateDate: found.createDate,
        Tags: [...found.tags].map(([Key, Value]) => ({ Key, Value })),
      };
    },
    TagOpenIDConnectProvider(input: TagOpenIDConnectProviderRequest) {
      const found = provider(input.OpenIDConnectProviderArn);
      for (const tag of input.Tags ?? []) found.tags.set(tag.Key ?? '', tag.Value ?? '');
      return {};
    },
    UntagOpenIDConnectProvider(input: UntagOpenIDConnectProviderRequest) {
      const found = provider(input.OpenIDConnectProviderArn);
      for (const key of input.TagKeys ?? []) found.tags.delete(key);
      return {};
    },
    DeleteOpenIDConnectProvider(input: DeleteOpenIDConnectProviderRequest) {
      provider(input.OpenIDConnectProviderArn);
      providers.delete(input.OpenIDConnectProviderArn ?? '');
      return {};
    },

    // A role's own policies, each action on each resource with the given
    // context (IAM API reference, SimulatePrincipalPolicy). Only roles are
    // simulated here; a user or an unknown ARN is NoSuchEntity.
    async SimulatePrincipalPolicy(input: SimulatePrincipalPolicyRequest) {
      const source = [...roles.values()].find((r) => r.arn === input.PolicySourceArn);
      if (source === undefined) throw noSuch(`Role ${input.PolicySourceArn} does not exist.`);
      const principal = {
        name: source.name,
        arn: source.arn,
        policies: [
          ...[...source.inlinePolicies].map(([name, document]) => ({
            name,
            document: JSON.parse(document) as PolicyDocument,
          })),
          ...source.attachedPolicies.flatMap((arn) => {
            const document = defaultDocument(arn);
            return document === undefined ? [] : [{ name: arn, document }];
          }),
        ],
        boundary:
          source.permissionsBoundary === undefined ? undefined : defaultDocument(source.permissionsBoundary),
      };
      const context = Object.fromEntries(
        (input.ContextEntries ?? []).map((entry) => [
          entry.ContextKeyName ?? '',
          entry.ContextKeyType === 'stringList'
            ? (entry.ContextKeyValues ?? [])
            : (entry.ContextKeyValues?.[0] ?? ''),
        ]),
      );
      const decisions = {
        Allowed: 'allowed',
        ImplicitlyDenied: 'implicitDeny',
        ExplicitlyDenied: 'explicitDeny',
      };
      const EvaluationResults = [];
      for (const action of input.ActionNames ?? []) {
        for (const resource of input.ResourceArns ?? ['*']) {
          // IAM's simulation evaluates the identity's policies alone unless given
          // a resource policy (SimulatePrincipalPolicy ResourcePolicy); the
          // evaluator asks a KMS key's policy to allow too, so keys get the
          // policy of an AWS managed key, which leaves the decision to IAM in
          // the account (KMS Developer Guide, "AWS managed keys")
          const resourcePolicy = resource.startsWith('arn:aws:kms:') ? accountKeyPolicy : undefined;
          const decision =
            decisions[await decide(principal, { action, resource, context, resourcePolicy }, false)];
          EvaluationResults.push({
            EvalActionName: action,
            EvalResourceName: resource,
            EvalDecision: decision,
            ResourceSpecificResults: [{ EvalResourceName: resource, EvalResourceDecision: decision }],
          });
        }
      }
      return { EvaluationResults, IsTruncated: false };
    },
  });

  function describe(r: FakeRole) {
    return {
      Path: '/',
      RoleName: r.name,
      RoleId: r.roleId,
      Arn: r.arn,
      CreateDate: r.createDate,
      Description: r.description,
      AssumeRolePolicyDocument: encodeURIComponent(r.trustPolicy),
      MaxSessionDuration: 3600,
      ...(r.permissionsBoundary === undefined
        ? {}
        : {
            PermissionsBoundary: {
              PermissionsBoundaryType: 'Policy',
              PermissionsBoundaryArn: r.permissionsBoundary,
            },
          }),
    };
  }

  function describePolicy(p: FakeManagedPolicy) {
    return {
      PolicyName: p.name,
      Arn: p.arn,
      Path: '/',
      DefaultVersionId: p.versions.find((v) => v.isDefault)?.versionId,
      AttachmentCount: [...roles.values()].filter((r) => r.permissionsBoundary === p.arn).length,
      IsAttachable: true,
      Tags: [...p.tags].map(([Key, Value]) => ({ Key, Value })),
    };
  }

  return {
    ...installed,
    roles,
    policies,
    providers,
    policyDocument: defaultDocument,
    taggedResources: () => [
      ...[...roles.values()].map((r) => ({ arn: r.arn, tags: Object.fromEntries(r.tags) })),
      ...[...providers.values()].map((p) => ({ arn: p.arn, tags: Object.fromEntries(p.tags) })),
      ...[...policies.values()].map((p) => ({ arn: p.arn, tags: Object.fromEntries(p.tags) })),
    ],
  };
}
