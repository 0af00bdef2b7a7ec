import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createClients, destroyClients } from '../lib/clients.ts';
import { loadDeployConfig } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { parseFlags } from '../lib/flags.ts';
import { PolicyFile, readPolicyFile } from '../lib/policy-files.ts';
import { confirm, createConsoleLog, ExitCode, isInteractive, runCli } from './cli.ts';
import { planDocument, renderChanges } from './plan.ts';
import { ensureBoundary } from './resources/boundary.ts';
import { createContext } from './up.ts';

// The first step of setting up an account, run by an administrator (not by
// the deployer, which may not touch it): the permissions boundary that caps
// every role up.ts creates, from docs/boundary-policy.json. Run it again when
// that file changes; a second run changes nothing.

const usage = `Usage: npx tsx provision/bootstrap.ts [options]

As an administrator of the account, once per account and APP: creates the
permissions boundary every role up.ts creates carries (the managed policy
<APP>-boundary, or PERMISSIONS_BOUNDARY), from docs/boundary-policy.json, or
makes that file its default version when it differs. The deploy role
(docs/deployer-policy.json) may not create or change it.

Options:
  --plan                   show what would change, change nothing
  --print-policy NAME      print docs/NAME-policy.json (deployer, operator, boundary, generator)
                           with this account, region, APP and STAGE filled in, and exit
  --yes                    do not ask for confirmation (required when not on a terminal)
  --json                   print the result as JSON on stdout
  --help                   show this help

Configuration: AWS_REGION, APP, STAGE, PERMISSIONS_BOUNDARY (docs/deploy.md).`;

const printable: Record<string, PolicyFile> = {
  deployer: PolicyFile.deployer,
  operator: PolicyFile.operator,
  boundary: PolicyFile.boundary,
  generator: PolicyFile.generator,
};

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    help: { type: 'boolean' },
    plan: { type: 'boolean' },
    yes: { type: 'boolean' },
    json: { type: 'boolean' },
    'print-policy': { type: 'string' },
  });
  if (flags.help) {
    process.stdout.write(`${usage}\n`);
    return ExitCode.ok;
  }
  const print = flags['print-policy'];
  if (print !== undefined && printable[print] === undefined) {
    throw new UsageError(`--print-policy ${print}: give one of ${Object.keys(printable).join(', ')}`);
  }
  const plan = Boolean(flags.plan);
  if (print === undefined && !plan && !flags.yes && !isInteractive()) {
    throw new UsageError(
      'bootstrap changes IAM and there is no terminal to confirm on: pass --yes, or --plan',
    );
  }
  const json = Boolean(flags.json);
  const config = loadDeployConfig();
  const log = createConsoleLog({ json });
  const clients = createClients(config.aws);
  try {
    const planCtx = await createContext(config, clients, log, 'plan');
    const { identity } = planCtx;
    if (print !== undefined) {
      const file = printable[print] as PolicyFile;
      const document = readPolicyFile(file, {
        ...identity,
        // the boundary covers every region and stage of the app
        region: file === PolicyFile.boundary ? '*' : identity.region,
        app: config.stack.app,
        stage: file === PolicyFile.boundary ? '*' : config.stack.stage,
      });
      process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
      return ExitCode.ok;
    }
    await ensureBoundary(planCtx);
    const planned = planCtx.changes;
    if (plan || planned.every((c) => c.action === 'unchanged')) {
      process.stdout.write(
        json ? `${JSON.stringify(planDocument('plan', planned), null, 2)}\n` : `${renderChanges(planned)}\n`,
      );
      return ExitCode.ok;
    }
    if (!flags.yes) {
      process.stdout.write(`${renderChanges(planned)}\n`);
      if (!(await confirm(`Change the permissions boundary in account ${identity.accountId}?`))) {
        log.info('nothing changed');
        return ExitCode.failed;
      }
    }
    const ctx = await createContext(config, clients, log, 'apply');
    const boundary = await ensureBoundary(ctx);
    log.done();
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ ...planDocument('apply', ctx.changes), boundary }, null, 2)}\n`,
      );
    } else {
      process.stdout.write(
        `${renderChanges(ctx.changes)}\n\nPermissions boundary: ${boundary.arn}\n` +
          'Next: give the deploy role docs/deployer-policy.json (npx tsx provision/bootstrap.ts --print-policy deployer prints it filled in); see docs/deploy.md.\n',
      );
    }
    return ExitCode.ok;
  } finally {
    destroyClients(clients);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await runCli(() => main(process.argv.slice(2)));
}
