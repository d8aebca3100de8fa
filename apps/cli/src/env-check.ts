/**
 * Misspelt `FEDLORA_*` overrides would be ignored without a word; `fedlora coordinator` and
 * `fedlora client` name them at start (names only, never values), with the closest known name.
 */
import { ClientConfigSchema } from '@fedlora/client';
import { envName, leafPaths, scopedEnvName, unknownEnvNames } from '@fedlora/config';
import { CoordinatorConfigSchema } from '@fedlora/coordinator';

/** Every override name either program reads: plain and scoped, for both config schemas. */
export function knownEnvNames(): Set<string> {
  const known = new Set<string>();
  for (const p of leafPaths(CoordinatorConfigSchema)) known.add(envName(p)).add(scopedEnvName(p, 'COORDINATOR'));
  for (const p of leafPaths(ClientConfigSchema)) known.add(envName(p)).add(scopedEnvName(p, 'CLIENT'));
  return known;
}

/** One warning line per unknown `FEDLORA_*` variable in `env`. */
export function unknownEnvWarnings(env: Record<string, string | undefined> = process.env): string[] {
  return unknownEnvNames(env, knownEnvNames()).map(
    (u) => `fedlora: warning: ${u.name} is not a fedlora setting and is ignored${u.didYouMean ? ` (did you mean ${u.didYouMean}?)` : ''}`,
  );
}
