import { InvalidArgumentError } from 'commander';

/** Commander parser for an integer flag within [min, max]; the error names the flag. */
export function intOption(flag: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${flag} expects an integer in [${min}, ${max}], received "${v}"`);
    return n;
  };
}

/** Commander parser for a number flag within [min, max]. */
export function numberOption(flag: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${flag} expects a number in [${min}, ${max}], received "${v}"`);
    return n;
  };
}
