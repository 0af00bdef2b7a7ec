import {
  type CreateRoleRequest,
  DeleteConflictException,
  type DeleteRolePolicyRequest,
  type DeleteRoleRequest,
  type DetachRolePolicyRequest,
  EntityAlreadyExistsException,
  type GetRolePolicyRequest,
  type GetRoleRequest,
  IAMClient,
  type ListAttachedRolePoliciesRequest,
  type ListRolePoliciesRequest,
  type ListRoleTagsRequest,
  MalformedPolicyDocumentException,
  NoSuchEntityException,
  type PutRolePolicyRequest,
  type TagRoleRequest,
  type UpdateAssumeRolePolicyRequest,
} from '@aws-sdk/client-iam';
import { type InstalledFake, installHandlers } from './calls.ts';

// A stateful IAM for roles and their inline policies. Like the service, it
// returns policy documents URL-encoded (RFC 3986) and refuses to delete a role
// that still has policies.

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

export interface IamFake extends InstalledFake {
  roles: Map<string, FakeRole>;
  taggedResources(): { arn: string; tags: Record<string, string> }[];
}

const metadata = { $metadata: {} };

function checkDocument(document: string | undefined, what: string): string {
  try {
    JSON.parse(document ?? '');
  } catch {
    throw new MalformedPolicyDocumentException({ message: `${what} is not valid JSON`, ...metadata });
  }
  return document as string;
}

export function installIamFake(options: { accountId?: string } = {}): IamFake {
  const accountId = options.accountId ?? '000000000000';
  const roles = new Map<string, FakeRole>();
  let nextId = 1;

  function role(name: string | undefined): FakeRole {
    const found = roles.get(name ?? '');
    if (found === undefined) {
      throw new NoSuchEntityException({
        message: `The role with name ${name} cannot be found.`,
        ...metadata,
      });
    }
    return found;
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
        permissionsBoundary: input.PermissionsBoundary,
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
        throw new NoSuchEntityException({
          message: `The role policy with name ${input.PolicyName} cannot be found.`,
          ...metadata,
        });
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
        throw new NoSuchEntityException({
          message: `The role policy ${input.PolicyName} cannot be found.`,
          ...metadata,
        });
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
    };
  }

  return {
    ...installed,
    roles,
    taggedResources: () => [...roles.values()].map((r) => ({ arn: r.arn, tags: Object.fromEntries(r.tags) })),
  };
}
