import type { Io } from '../../../ops/common.ts';

// An Io that keeps what a command writes, for the ops commands' tests.

export interface Captured extends Io {
  stdout(): string;
  stderr(): string;
}

export function capture(root: string, confirm?: (question: string) => Promise<boolean>): Captured {
  let out = '';
  let err = '';
  return {
    root,
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
    confirm,
    stdout: () => out,
    stderr: () => err,
  };
}
