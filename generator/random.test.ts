import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRandom, mixSeed } from './random.ts';

test('the same seed gives the same sequence and another seed a different one', () => {
  const draw = (seed: number) => {
    const random = createRandom(seed);
    return Array.from({ length: 20 }, () => random.uint32());
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
});

test('int stays within its inclusive bounds and reaches both ends', () => {
  const random = createRandom(7);
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const n = random.int(3, 9);
    assert.ok(n >= 3 && n <= 9, `${n} out of range`);
    seen.add(n);
  }
  assert.deepEqual([...seen].sort(), [3, 4, 5, 6, 7, 8, 9]);
});

test('values spread evenly enough to drive the file mix', () => {
  const random = createRandom(1);
  let hits = 0;
  for (let i = 0; i < 100_000; i++) if (random.chance(0.25)) hits++;
  assert.ok(Math.abs(hits / 100_000 - 0.25) < 0.01, `chance(0.25) hit ${hits / 1000}%`);
});

test('each file index gets its own seed', () => {
  const seeds = new Set(Array.from({ length: 100_000 }, (_, index) => mixSeed(12345, index)));
  assert.equal(seeds.size, 100_000);
  assert.notEqual(mixSeed(1, 0), mixSeed(2, 0));
});
