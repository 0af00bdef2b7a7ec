// A seeded pseudo-random generator, so the same --seed always produces the
// same files. Written by hand because the algorithms are a few lines each and
// well known: sfc32 (Chris Doty-Humphrey's "small fast counting" generator from
// PractRand) for the stream, and splitmix32's finaliser to derive one
// independent seed per file from the run's seed and the file's index, so files
// generated concurrently do not share (or race on) one stream.

export interface Random {
  // a float in [0, 1)
  next(): number;
  // an integer in [min, max], both inclusive
  int(min: number, max: number): number;
  // true with the given probability
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
  // a 32-bit unsigned integer
  uint32(): number;
}

export const maxSeed = 0xffff_ffff;

export function mixSeed(seed: number, index: number): number {
  let z = (seed + Math.imul(index + 1, 0x9e37_79b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85eb_ca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2_ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export function createRandom(seed: number): Random {
  let a = 0x9e37_79b9;
  let b = 0x243f_6a88;
  let c = 0xb7e1_5162;
  let d = seed >>> 0;
  const uint32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // the first outputs of sfc32 correlate with the seed; discarding a few is the
  // author's recommended warm-up
  for (let i = 0; i < 12; i++) uint32();
  const next = (): number => uint32() / 0x1_0000_0000;
  return {
    next,
    uint32,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (probability) => next() < probability,
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
  };
}
