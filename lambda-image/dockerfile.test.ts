import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { bundleFileName, defaultEntry, defaultOutdir, nodeTarget, projectRoot } from './bundle.ts';
import {
  baseImage,
  flushCmd,
  imageCmd,
  imageEnv,
  migrateCmd,
  rdsCaBundlePath,
  rdsCaBundleUrl,
  taskRoot,
} from './recipe.ts';

// The image has two recipes: the Dockerfile, and the daemonless build in
// publish.ts that `up` runs. This test reads the Dockerfile and checks that
// it builds what publish.ts builds: the same base image, the same RDS CA
// bundle at the same path, exactly the same environment and CMD, and the
// bundle's files in the task root.

interface Instruction {
  keyword: string;
  flags: Record<string, string>;
  args: string[];
  raw: string;
}

// Dockerfile syntax enough for this file: comments, `\` continuations,
// --flag=value options, JSON (exec form) or whitespace-separated arguments.
export function parseDockerfile(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line) && current === '') continue;
    const continued = /\\\s*$/.test(line);
    current += `${line.replace(/\\\s*$/, '')} `;
    if (!continued) {
      if (current.trim() !== '') logical.push(current.trim());
      current = '';
    }
  }
  return logical.map((raw) => {
    const [keyword = '', ...rest] = raw.split(/\s+/);
    const flags: Record<string, string> = {};
    while (rest[0]?.startsWith('--')) {
      const [name = '', value = ''] = (rest.shift() as string).slice(2).split('=');
      flags[name] = value;
    }
    const remainder = rest.join(' ');
    const args = remainder.startsWith('[') ? (JSON.parse(remainder) as string[]) : rest;
    return { keyword: keyword.toUpperCase(), flags, args, raw };
  });
}

// ${NAME} from the ARGs and the base image's environment (LAMBDA_TASK_ROOT
// is /var/task in every Lambda base image: "Defined runtime environment
// variables", Lambda developer guide).
function expand(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced, bare) => vars[braced ?? bare] ?? whole);
}

interface Stage {
  name: string | undefined;
  from: string;
  instructions: Instruction[];
}

function splitStages(instructions: Instruction[]) {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = instruction.args;
      stages.push({ name: as?.toUpperCase() === 'AS' ? name : undefined, from: image, instructions: [] });
    } else if (instruction.keyword === 'ARG' && stages.length === 0) {
      // only ARGs before the first FROM can be used in a FROM
      const [name = '', value = ''] = (instruction.args[0] ?? '').split('=');
      args[name] = value;
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { args, stages };
}

async function readRecipe() {
  const { args, stages } = splitStages(
    parseDockerfile(await readFile(join(projectRoot, 'Dockerfile'), 'utf8')),
  );
  const final = stages.at(-1);
  assert.ok(final, 'the Dockerfile has a stage');
  // the final FROM may name an earlier stage (directly or through an ARG)
  let from = expand(final.from, args);
  for (let hops = 0; hops < stages.length; hops++) {
    const stage = stages.find((s) => s.name === from);
    if (stage === undefined) break;
    from = expand(stage.from, args);
  }
  return { stages, final, baseImage: from };
}

function only(instructions: Instruction[], keyword: string): Instruction[] {
  return instructions.filter((i) => i.keyword === keyword);
}

test('the Dockerfile builds on the base image publish.ts builds on', async () => {
  const recipe = await readRecipe();
  assert.equal(recipe.baseImage, baseImage);
  const [, major] = /^public\.ecr\.aws\/lambda\/nodejs:(\d+)(@sha256:[0-9a-f]{64})?$/.exec(baseImage) ?? [];
  assert.ok(major, `baseImage ${baseImage} is a public.ecr.aws/lambda/nodejs tag`);
  assert.equal(nodeTarget, `node${major}`);
});

test('the Dockerfile carries the RDS CA bundle where publish.ts puts it, readable by the function', async () => {
  const { final } = await readRecipe();
  const adds = only(final.instructions, 'ADD');
  assert.equal(adds.length, 1, 'one ADD');
  const [url, destination = ''] = adds[0]?.args ?? [];
  assert.equal(url, rdsCaBundleUrl);
  assert.equal(expand(destination, { LAMBDA_TASK_ROOT: taskRoot }), rdsCaBundlePath);
  assert.equal(adds[0]?.flags.chmod, '644');
});

test('the Dockerfile sets exactly the environment and CMD publish.ts sets', async () => {
  const { final } = await readRecipe();
  const env: Record<string, string> = {};
  for (const instruction of only(final.instructions, 'ENV')) {
    for (const pair of instruction.args) {
      const equals = pair.indexOf('=');
      assert.ok(equals > 0, `ENV ${pair} is NAME=value`);
      env[pair.slice(0, equals)] = pair.slice(equals + 1);
    }
  }
  assert.deepEqual(env, { ...imageEnv });
  const cmds = only(final.instructions, 'CMD');
  assert.equal(cmds.length, 1, 'one CMD');
  assert.deepEqual(cmds[0]?.args, imageCmd);
});

test('each function’s entry point names a function the bundle exports', async () => {
  const entry = await readFile(join(projectRoot, defaultEntry), 'utf8');
  const exported = new Set([...entry.matchAll(/^export (?:async )?function (\w+)/gm)].map((m) => m[1]));
  const module = bundleFileName.replace(/\.mjs$/, '');
  for (const [command] of [imageCmd, flushCmd, migrateCmd]) {
    const [file, name = ''] = command.split('.');
    assert.equal(file, module, `${command} is in ${bundleFileName}`);
    assert.ok(exported.has(name), `${defaultEntry} exports ${name} (${command})`);
  }
});

test('the Dockerfile copies the bundle stage’s files into the task root, as publish.ts lays them out', async () => {
  const { final } = await readRecipe();
  const copies = only(final.instructions, 'COPY');
  assert.equal(copies.length, 1, 'one COPY');
  const copy = copies[0] as Instruction;
  assert.equal(copy.flags.from, 'bundle');
  assert.equal(copy.flags.chmod, '644');
  const destination = expand(copy.args.at(-1) ?? '', { LAMBDA_TASK_ROOT: taskRoot });
  assert.equal(destination, `${taskRoot}/`);
  assert.deepEqual(
    copy.args.slice(0, -1),
    [bundleFileName, `${bundleFileName}.map`].map((name) => `/src/${defaultOutdir}/${name}`),
  );
});

test('the parser reads continuations, flags and exec form (so the checks above can fail)', () => {
  const parsed = parseDockerfile(
    [
      '# comment',
      'FROM a:1 AS x',
      'ENV A=1 \\',
      '    B=2',
      'ADD --chmod=600 http://h/f /d',
      'CMD ["x.y"]',
    ].join('\n'),
  );
  assert.deepEqual(
    parsed.map((i) => [i.keyword, i.flags, i.args]),
    [
      ['FROM', {}, ['a:1', 'AS', 'x']],
      ['ENV', {}, ['A=1', 'B=2']],
      ['ADD', { chmod: '600' }, ['http://h/f', '/d']],
      ['CMD', {}, ['x.y']],
    ],
  );
});
