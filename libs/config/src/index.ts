// YAML configs validated with zod: loading, FEDLORA_<SECTION>_<KEY> environment overrides, readable errors.
/** A config that cannot be read, parsed or validated (the message lists every problem). */
export { ConfigError } from './config-loader.js';
/** Loading and validating a config file or document against a schema. */
export { loadConfigFile, validateConfig, type PathKeys, type EnvScope } from './config-loader.js';
/** Environment overrides: names, leaf paths, application. */
export { ENV_PREFIX, RUNTIME_ENV, unknownEnvNames, envName, scopedEnvName, leafPaths, applyEnvOverrides, appliedEnvOverrides, schemaAt, formatIssues } from './config-loader.js';
/** Schema building blocks shared by the apps' configs. */
export { int, positive, nonNegative, unitOpen, unitHalfOpen, path, NameSchema, hostPortSchema } from './schema-helpers.js';
