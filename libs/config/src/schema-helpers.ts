import { z } from 'zod';

/**
 * Schema building blocks shared by the coordinator's and the client's configs. Each carries a
 * `describe()` text, which config errors quote as the expected value.
 */

/** An integer >= min (and <= max when given). */
export const int = (min: number, max?: number) =>
  (max === undefined ? z.int().min(min) : z.int().min(min).max(max)).describe(max === undefined ? `an integer >= ${min}` : `an integer in ${min}..${max}`);
/** A number > 0. */
export const positive = () => z.number().positive().describe('a number > 0');
/** A number >= 0. */
export const nonNegative = () => z.number().min(0).describe('a number >= 0');
/** A number in (0, 1). */
export const unitOpen = () => z.number().gt(0).lt(1).describe('a number in (0, 1)');
/** A number in [0, 1). */
export const unitHalfOpen = () => z.number().min(0).lt(1).describe('a number in [0, 1)');
/** A non-empty file system path (resolved against the config file's directory by the loader). */
export const path = () => z.string().min(1).describe('a file system path');

/** A name usable as an identifier, file name and certificate CN. */
export const NameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
  .describe('1..64 letters, digits, ".", "_" or "-", starting with a letter or digit');

/** `host:port` with an IPv6 host in brackets; `allowZero` accepts port 0 (the system picks one, for listening). */
export function hostPortSchema(opts: { allowZero: boolean; description: string }) {
  return z
    .string()
    .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/)
    .refine((s) => {
      const port = Number(s.slice(s.lastIndexOf(':') + 1));
      return port >= (opts.allowZero ? 0 : 1) && port <= 65535;
    })
    .describe(opts.description);
}
