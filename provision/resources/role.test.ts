import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { callNames, mutatingCalls, resetCalls } from '../../test/fakes/calls.ts';
import { type IamFake, installIamFake } from '../../test/fakes/iam.ts';
import { testContext, testIdentity } from '../../test/provision/context.ts';
import { deleteRole, ensureSchedulerRole } from './role.ts';

// The permissions boundary on every role up.ts makes: set at creation, put
// back first when it is gone (the deployer may change a role only while it
// carries it), and put back before a delete for the same reason.

const accountId = testIdentity.accountId;
const boundary = `arn:aws:iam::${accountId}:policy/ada-linecount-boundary`;
const functionArn = `arn:aws:lambda:us-east-1:${accountId}:function:ada-linecount-dev-flush`;
let iam: IamFake;

beforeEach(() => {
  iam = installIamFake({ accountId });
  resetCalls();
});
afterEach(() => iam.restore());

// the scheduler role as up makes it
async function createdRole() {
  await ensureSchedulerRole(testContext(), { functionArn });
  const role = iam.roles.get('ada-linecount-dev-scheduler');
  assert.ok(role);
  return role;
}

test('a role is created carrying the boundary', async () => {
  await ensureSchedulerRole(testContext(), { functionArn });
  assert.equal(iam.roles.get('ada-linecount-dev-scheduler')?.permissionsBoundary, boundary);
});

test('a boundary that does not exist fails the create and names the permission to check', async () => {
  await assert.rejects(
    ensureSchedulerRole(testContext('apply', { PERMISSIONS_BOUNDARY: 'missing' }), { functionArn }),
    /cannot create iam role ada-linecount-dev-scheduler: NoSuchEntity.*\(check iam:CreateRole with iam:PermissionsBoundary arn:aws:iam::123456789012:policy\/missing/,
  );
});

test('a role stripped of its boundary gets it back before its policy is put back', async () => {
  const role = await createdRole();
  role.permissionsBoundary = undefined;
  role.inlinePolicies.clear();
  resetCalls();
  const ctx = testContext();
  await ensureSchedulerRole(ctx, { functionArn });
  assert.deepEqual(callNames(mutatingCalls()), ['iam:PutRolePermissionsBoundary', 'iam:PutRolePolicy']);
  assert.equal(role.permissionsBoundary, boundary);
  assert.deepEqual(
    ctx.changes[0]?.fields?.map((f) => f.field),
    ['permissionsBoundary', 'policy:invoke-flush'],
  );
});

test('a role with another boundary is given this one', async () => {
  const role = await createdRole();
  role.permissionsBoundary = 'arn:aws:iam::aws:policy/AdministratorAccess';
  resetCalls();
  await ensureSchedulerRole(testContext(), { functionArn });
  assert.deepEqual(callNames(mutatingCalls()), ['iam:PutRolePermissionsBoundary']);
  assert.equal(role.permissionsBoundary, boundary);
});

test('a role without the boundary gets it back before it is deleted; one that has it does not', async () => {
  const role = await createdRole();
  role.permissionsBoundary = undefined;
  resetCalls();
  await deleteRole(testContext(), 'ada-linecount-dev-scheduler');
  assert.deepEqual(callNames(mutatingCalls()), [
    'iam:PutRolePermissionsBoundary',
    'iam:DeleteRolePolicy',
    'iam:DeleteRole',
  ]);
  await ensureSchedulerRole(testContext(), { functionArn });
  resetCalls();
  await deleteRole(testContext(), 'ada-linecount-dev-scheduler');
  assert.deepEqual(callNames(mutatingCalls()), ['iam:DeleteRolePolicy', 'iam:DeleteRole']);
});
