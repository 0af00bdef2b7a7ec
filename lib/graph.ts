// Named steps with explicit dependencies, run as soon as what they need is
// done: independent steps run at once. A failure starts nothing new, waits for
// the steps in flight (an AWS call or a wait left running would otherwise
// outlive the command) and reports the first error with its step.
//
// Written here rather than taken from npm: async.auto reports an error at once
// without waiting for the tasks in flight, p-graph and task-graph-runner pass
// no results between tasks, and none of them types each step's dependencies.

export interface Step<Context = undefined> {
  name: string;
  needs: readonly string[];
  // receives the results of the steps it needs, by name
  run(results: Readonly<Record<string, unknown>>, context: Context): Promise<unknown>;
}

export interface RunOptions<Context> {
  // what each step receives beside its dependencies' results (up gives each its own record list)
  context?: (step: string) => Context;
  onStart?: (step: string) => void;
  // error is set when the step failed
  onFinish?: (step: string, error?: unknown) => void;
}

// The graph itself is wrong: a duplicate name, an unknown dependency, a cycle.
export class GraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphError';
  }
}

// The first step that failed; `cause` is its error, unchanged.
export class StepFailure extends Error {
  readonly step: string;
  constructor(step: string, cause: unknown) {
    super(`step ${step} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'StepFailure';
    this.step = step;
  }
}

// Checked before anything runs, so a wrong graph starts no step.
export function checkSteps(steps: readonly Step<unknown>[]): void {
  const byName = new Map<string, Step<unknown>>();
  for (const step of steps) {
    if (byName.has(step.name)) throw new GraphError(`step ${step.name} is defined twice`);
    byName.set(step.name, step);
  }
  for (const step of steps) {
    const unknown = step.needs.filter((need) => !byName.has(need));
    if (unknown.length > 0) throw new GraphError(`step ${step.name} needs unknown ${unknown.join(', ')}`);
  }
  // depth-first: a step met again while it is on the path closes a cycle
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw new GraphError(`steps depend on each other in a cycle: ${cycle.join(' → ')}`);
    }
    state.set(name, 'visiting');
    for (const need of byName.get(name)?.needs ?? []) visit(need, [...path, name]);
    state.set(name, 'done');
  };
  for (const step of steps) visit(step.name, []);
}

// Runs every step once its needs are done, in declared order among those ready.
// Resolves with every step's result by name; rejects with the first StepFailure.
export function runSteps<Context>(
  steps: readonly Step<Context>[],
  options: RunOptions<Context> = {},
): Promise<Record<string, unknown>> {
  checkSteps(steps as readonly Step<unknown>[]);
  const results: Record<string, unknown> = {};
  const started = new Set<string>();
  const done = new Set<string>();
  let running = 0;
  let failure: StepFailure | undefined;
  return new Promise((resolve, reject) => {
    const start = (step: Step<Context>) => {
      started.add(step.name);
      running += 1;
      options.onStart?.(step.name);
      const needed = Object.fromEntries(step.needs.map((need) => [need, results[need]]));
      const context = options.context?.(step.name) as Context;
      (async () => step.run(needed, context))()
        .then(
          (value) => {
            results[step.name] = value;
            done.add(step.name);
            options.onFinish?.(step.name);
          },
          (error: unknown) => {
            failure ??= new StepFailure(step.name, error);
            options.onFinish?.(step.name, error);
          },
        )
        .finally(() => {
          running -= 1;
          next();
        });
    };
    const next = () => {
      if (failure === undefined) {
        for (const step of steps) {
          if (!started.has(step.name) && step.needs.every((need) => done.has(need))) start(step);
        }
      }
      if (running > 0) return;
      if (failure !== undefined) reject(failure);
      else resolve(results);
    };
    next();
  });
}

// The typed way to declare steps: each step names what it needs among the
// steps declared before it and receives their results with their types, so a
// graph built this way reads top to bottom in dependency order.
export class Graph<Results extends Record<string, unknown> = Record<never, never>, Context = undefined> {
  readonly steps: Step<Context>[] = [];

  step<Name extends string, Needs extends keyof Results & string, Result>(
    name: Name,
    needs: readonly Needs[],
    run: (results: Pick<Results, Needs>, context: Context) => Promise<Result> | Result,
  ): Graph<Results & Record<Name, Awaited<Result>>, Context> {
    this.steps.push({
      name,
      needs,
      run: async (results, context) => run(results as Pick<Results, Needs>, context),
    });
    return this as unknown as Graph<Results & Record<Name, Awaited<Result>>, Context>;
  }

  async run(options: RunOptions<Context> = {}): Promise<Results> {
    return (await runSteps(this.steps, options)) as Results;
  }
}

export function graph<Context = undefined>(): Graph<Record<never, never>, Context> {
  return new Graph<Record<never, never>, Context>();
}
