#!/usr/bin/env node
// Entry point of the `fedlora` command. The sources are TypeScript run through tsx's loader,
// so `npx fedlora` works right after `npm ci` with no separate build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
await main(process.argv);
