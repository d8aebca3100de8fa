import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** Directory that holds the `fedlora/v1/*.proto` files (the include root for proto-loader). */
export const PROTO_ROOT = dirname(fileURLToPath(import.meta.url));

/** Absolute path of the federation service definition. */
export const FEDERATION_PROTO = join(PROTO_ROOT, 'fedlora', 'v1', 'federation.proto');
