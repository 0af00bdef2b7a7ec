// A WebAssembly SIMD kernel that counts the `\n` bytes of a range of its own
// memory, 64 bytes per loop turn, and the few lines of assembler that write its
// binary. The module is ~200 bytes built from this source when the file loads:
// nothing to compile at build time, no generated file that can go stale, and
// esbuild bundles it like any other code. A text-format toolchain (wabt) would
// add a build step and a dependency for twenty instructions, so they are
// written out here by hand, each with its WebAssembly text form beside it.
//
// The kernel, in the text format:
//
//   (func (export "count") (param $at i32) (param $length i32) (result i32)
//     $newline = i8x16.splat 10
//     $end = $at + ($length & -64)
//     while $at < $end:                     ;; blocks of at most 63 turns
//       $stop = $at + min($end - $at, 63 * 64)
//       $lanes = 0
//       do:                                 ;; i8x16.eq gives -1 per match, so
//         $lanes -= eq(load $at, $newline)  ;; subtracting adds 1 per newline;
//         ... the same at $at+16, +32, +48  ;; 4 per turn × 63 turns = 252 ≤ 255,
//         $at += 64                         ;; so a u8 lane never overflows
//       while $at < $stop
//       $total += widen(widen($lanes))      ;; u8 → u16 → u32 pairwise sums
//     $count = sum of $total's four lanes
//     for each byte left (< 64): $count += (byte == 10)
//     return $count)

const wasmType = { i32: 0x7f, v128: 0x7b, func: 0x60, emptyBlock: 0x40 } as const;
const section = { type: 1, function: 3, memory: 5, export: 7, code: 10 } as const;
const exportKind = { func: 0, memory: 2 } as const;
const simd = 0xfd;
// single-byte core opcodes (WebAssembly core spec, "Instructions" binary format)
const op = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load8U: 0x2d,
  i32Const: 0x41,
  i32Eq: 0x46,
  i32LtU: 0x49,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32And: 0x71,
} as const;
// SIMD opcodes, each written after the 0xfd prefix as an unsigned LEB128
const simdOp = {
  v128Load: 0,
  v128Const: 12,
  i8x16Splat: 15,
  i32x4ExtractLane: 27,
  i8x16Eq: 35,
  i8x16Sub: 113,
  i16x8ExtaddPairwiseI8x16U: 125,
  i32x4ExtaddPairwiseI16x8U: 127,
  i32x4Add: 174,
} as const;

// parameters and locals, by index
const local = { at: 0, length: 1, end: 2, stop: 3, count: 4, newline: 5, lanes: 6, total: 7 } as const;
const bytesPerTurn = 64;
// 255 / 4 increments per u8 lane per turn, rounded down
const turnsPerBlock = 63;

export const wasmPageBytes = 65536;

function encodeUnsigned(value: number): number[] {
  const out: number[] = [];
  let rest = value >>> 0;
  do {
    const byte = rest & 0x7f;
    rest >>>= 7;
    out.push(rest === 0 ? byte : byte | 0x80);
  } while (rest !== 0);
  return out;
}

function encodeSigned(value: number): number[] {
  const out: number[] = [];
  let rest = value | 0;
  for (;;) {
    const byte = rest & 0x7f;
    rest >>= 7;
    const done = (rest === 0 && (byte & 0x40) === 0) || (rest === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function encodeVector(items: number[][]): number[] {
  return [...encodeUnsigned(items.length), ...items.flat()];
}

function encodeName(name: string): number[] {
  const bytes = [...new TextEncoder().encode(name)];
  return [...encodeUnsigned(bytes.length), ...bytes];
}

function encodeSection(id: number, contents: number[]): number[] {
  return [id, ...encodeUnsigned(contents.length), ...contents];
}

const get = (index: number) => [op.localGet, index];
const set = (index: number) => [op.localSet, index];
const tee = (index: number) => [op.localTee, index];
const i32 = (value: number) => [op.i32Const, ...encodeSigned(value)];
const vector = (code: number, ...immediates: number[]) => [simd, ...encodeUnsigned(code), ...immediates];
// memarg: alignment hint (log2 bytes, 0 = no promise) then offset
const load128 = (offset: number) => vector(simdOp.v128Load, 0, ...encodeUnsigned(offset));
const countMatches = (offset: number) => [
  ...get(local.at),
  ...load128(offset),
  ...get(local.newline),
  ...vector(simdOp.i8x16Eq),
  ...vector(simdOp.i8x16Sub),
];

function encodeCountBody(): number[] {
  const code = [
    // $newline = i8x16.splat 10
    ...i32(10),
    ...vector(simdOp.i8x16Splat),
    ...set(local.newline),
    // $end = $at + ($length & -64)
    ...get(local.at),
    ...get(local.length),
    ...i32(-bytesPerTurn),
    op.i32And,
    op.i32Add,
    ...set(local.end),
    op.block,
    wasmType.emptyBlock,
    op.loop,
    wasmType.emptyBlock,
    // while $at < $end
    ...get(local.at),
    ...get(local.end),
    op.i32GeU,
    op.brIf,
    1,
    // $stop = $at + min($end - $at, 63 * 64)
    ...get(local.end),
    ...get(local.at),
    op.i32Sub,
    ...tee(local.stop),
    ...i32(turnsPerBlock * bytesPerTurn),
    ...get(local.stop),
    ...i32(turnsPerBlock * bytesPerTurn),
    op.i32LtU,
    op.select,
    ...get(local.at),
    op.i32Add,
    ...set(local.stop),
    // $lanes = 0
    ...vector(simdOp.v128Const, ...new Array<number>(16).fill(0)),
    ...set(local.lanes),
    op.loop,
    wasmType.emptyBlock,
    ...get(local.lanes),
    ...countMatches(0),
    ...countMatches(16),
    ...countMatches(32),
    ...countMatches(48),
    ...set(local.lanes),
    // $at += 64, again while $at < $stop
    ...get(local.at),
    ...i32(bytesPerTurn),
    op.i32Add,
    ...tee(local.at),
    ...get(local.stop),
    op.i32LtU,
    op.brIf,
    0,
    op.end,
    // $total += widen(widen($lanes))
    ...get(local.total),
    ...get(local.lanes),
    ...vector(simdOp.i16x8ExtaddPairwiseI8x16U),
    ...vector(simdOp.i32x4ExtaddPairwiseI16x8U),
    ...vector(simdOp.i32x4Add),
    ...set(local.total),
    op.br,
    0,
    op.end,
    op.end,
    // $count = sum of $total's lanes
    ...get(local.total),
    ...vector(simdOp.i32x4ExtractLane, 0),
    ...get(local.total),
    ...vector(simdOp.i32x4ExtractLane, 1),
    op.i32Add,
    ...get(local.total),
    ...vector(simdOp.i32x4ExtractLane, 2),
    op.i32Add,
    ...get(local.total),
    ...vector(simdOp.i32x4ExtractLane, 3),
    op.i32Add,
    ...set(local.count),
    // the bytes after the last full 64: $end += $length & 63, one byte at a time
    ...get(local.end),
    ...get(local.length),
    ...i32(bytesPerTurn - 1),
    op.i32And,
    op.i32Add,
    ...set(local.end),
    op.block,
    wasmType.emptyBlock,
    op.loop,
    wasmType.emptyBlock,
    ...get(local.at),
    ...get(local.end),
    op.i32GeU,
    op.brIf,
    1,
    ...get(local.count),
    ...get(local.at),
    op.i32Load8U,
    0,
    0,
    ...i32(10),
    op.i32Eq,
    op.i32Add,
    ...set(local.count),
    ...get(local.at),
    ...i32(1),
    op.i32Add,
    ...set(local.at),
    op.br,
    0,
    op.end,
    op.end,
    ...get(local.count),
    op.end,
  ];
  // locals after the two parameters: 3 × i32 ($end, $stop, $count), 3 × v128
  const locals = encodeVector([
    [3, wasmType.i32],
    [3, wasmType.v128],
  ]);
  const body = [...locals, ...code];
  return [...encodeUnsigned(body.length), ...body];
}

// A module with one fixed-size memory of `pages` × 64 KiB (minimum = maximum,
// so it never grows and a view on it never detaches) and the count function.
function encodeNewlineModule(pages: number): Uint8Array {
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d], // "\0asm"
    ...[0x01, 0x00, 0x00, 0x00], // version 1
    ...encodeSection(
      section.type,
      encodeVector([[wasmType.func, ...encodeVector([[wasmType.i32], [wasmType.i32]]), 1, wasmType.i32]]),
    ),
    ...encodeSection(section.function, encodeVector([[0]])),
    ...encodeSection(
      section.memory,
      encodeVector([[0x01, ...encodeUnsigned(pages), ...encodeUnsigned(pages)]]),
    ),
    ...encodeSection(
      section.export,
      encodeVector([
        [...encodeName('count'), exportKind.func, 0],
        [...encodeName('memory'), exportKind.memory, 0],
      ]),
    ),
    ...encodeSection(section.code, encodeVector([encodeCountBody()])),
  ];
  return Uint8Array.from(bytes);
}

interface NewlineKernel {
  // the module's whole memory; count() reads any range of it
  memory: Uint8Array;
  // the number of 0x0A bytes in memory[at, at + length)
  count(at: number, length: number): number;
}

// The WebAssembly JavaScript API is a global in Node.js, but its types live in
// TypeScript's DOM library, which this project does not load; these are the
// few members used here.
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

export function instantiateNewlineKernel(pages: number): NewlineKernel {
  // Synchronous compile and instantiate: the module is tiny, and the counter
  // must be usable as soon as this file is imported.
  const instance = new wasm.Instance(new wasm.Module(encodeNewlineModule(pages)));
  const { count, memory } = instance.exports as {
    count: (at: number, length: number) => number;
    memory: { buffer: ArrayBuffer };
  };
  return { memory: new Uint8Array(memory.buffer), count };
}
