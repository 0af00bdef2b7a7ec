import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphError, graph, runSteps, type Step, StepFailure } from './graph.ts';

// A step that finishes when the test says so, to control completion order.
function gate() {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('independent steps run at once, and a step starts as soon as what it needs is done', async () => {
  const events: string[] = [];
  const slow = gate();
  const fast = gate();
  const steps: Step[] = [
    { name: 'slow', needs: [], run: async () => (await slow.opened, 'S') },
    { name: 'fast', needs: [], run: async () => (await fast.opened, 'F') },
    { name: 'afterFast', needs: ['fast'], run: async (r) => `${r.fast}+` },
    { name: 'both', needs: ['slow', 'afterFast'], run: async (r) => `${r.slow}${r.afterFast}` },
  ];
  const run = runSteps(steps, {
    onStart: (name) => events.push(`start ${name}`),
    onFinish: (name) => events.push(`end ${name}`),
  });
  await tick();
  assert.deepEqual(events, ['start slow', 'start fast']);
  fast.open();
  await tick();
  // slow is still running: afterFast did not wait for it
  assert.deepEqual(events, ['start slow', 'start fast', 'end fast', 'start afterFast', 'end afterFast']);
  slow.open();
  const results = await run;
  assert.deepEqual(results, { slow: 'S', fast: 'F', afterFast: 'F+', both: 'SF+' });
  assert.deepEqual(events.slice(-3), ['end slow', 'start both', 'end both']);
});

test('a step receives only the results it names', async () => {
  const seen: unknown[] = [];
  await runSteps([
    { name: 'a', needs: [], run: async () => 1 },
    { name: 'b', needs: [], run: async () => 2 },
    { name: 'c', needs: ['a'], run: async (r) => seen.push(r) },
  ]);
  assert.deepEqual(seen, [{ a: 1 }]);
});

test('a failure starts nothing new, waits for the steps in flight and reports the first error with its step', async () => {
  const events: string[] = [];
  const inFlight = gate();
  const run = runSteps(
    [
      {
        name: 'long',
        needs: [],
        run: async () => {
          await inFlight.opened;
          events.push('long finished');
        },
      },
      { name: 'broken', needs: [], run: async () => Promise.reject(new Error('no permission')) },
      { name: 'alsoBroken', needs: [], run: async () => (await tick(), Promise.reject(new Error('later'))) },
      { name: 'afterBroken', needs: ['broken'], run: async () => events.push('afterBroken ran') },
      { name: 'afterLong', needs: ['long'], run: async () => events.push('afterLong ran') },
    ],
    { onStart: (name) => events.push(`start ${name}`) },
  );
  let settled = false;
  run.catch(() => undefined).finally(() => (settled = true));
  await tick();
  await tick();
  assert.equal(settled, false, 'the run waits for the step in flight');
  inFlight.open();
  await assert.rejects(run, (error: unknown) => {
    assert.ok(error instanceof StepFailure);
    assert.equal(error.step, 'broken');
    assert.equal((error.cause as Error).message, 'no permission');
    assert.equal(error.message, 'step broken failed: no permission');
    return true;
  });
  assert.deepEqual(events, ['start long', 'start broken', 'start alsoBroken', 'long finished']);
});

test('a step that throws at once fails like one that rejects', async () => {
  await assert.rejects(
    runSteps([
      {
        name: 'a',
        needs: [],
        run: () => {
          throw new Error('sync');
        },
      },
    ]),
    { name: 'StepFailure', step: 'a' },
  );
});

test('unknown dependencies, cycles and duplicates are refused before any step starts', async () => {
  let ran = false;
  const run = async () => {
    ran = true;
  };
  assert.throws(
    () =>
      runSteps([
        { name: 'a', needs: [], run },
        { name: 'b', needs: ['a', 'nope'], run },
      ]),
    new GraphError('step b needs unknown nope'),
  );
  assert.throws(
    () =>
      runSteps([
        { name: 'a', needs: [], run },
        { name: 'b', needs: ['a', 'd'], run },
        { name: 'c', needs: ['b'], run },
        { name: 'd', needs: ['c'], run },
      ]),
    new GraphError('steps depend on each other in a cycle: b → d → c → b'),
  );
  assert.throws(() => runSteps([{ name: 'a', needs: ['a'], run }]), /cycle: a → a/);
  assert.throws(
    () =>
      runSteps([
        { name: 'a', needs: [], run },
        { name: 'a', needs: [], run },
      ]),
    /step a is defined twice/,
  );
  assert.equal(ran, false);
});

test('an empty graph resolves with no results', async () => {
  assert.deepEqual(await runSteps([]), {});
});

test('the typed graph passes each step the results it needs, and a context per step', async () => {
  const results = await graph<string>()
    .step('vpc', [], (_, context) => ({ id: `vpc-1 (${context})` }))
    .step('subnet', ['vpc'], async ({ vpc }) => [`${vpc.id}/a`, `${vpc.id}/b`])
    .step('count', ['subnet'], ({ subnet }) => subnet.length)
    .run({ context: (name) => `for ${name}` });
  assert.deepEqual(results, {
    vpc: { id: 'vpc-1 (for vpc)' },
    subnet: ['vpc-1 (for vpc)/a', 'vpc-1 (for vpc)/b'],
    count: 2,
  });
});
