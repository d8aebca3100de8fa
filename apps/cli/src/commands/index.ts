import type { Command } from 'commander';

/** A subcommand module: adds itself (and its own subcommands) to the program. */
export type CommandModule = { register(program: Command): void };

/**
 * Every subcommand of `fedlora`, in the order `--help` lists them.
 * To add one: write `commands/<name>.ts` exporting `register(program)` and add one line here.
 */
export async function loadCommands(): Promise<CommandModule[]> {
  return Promise.all([
    import('./coordinator.js'),
    import('./status.js'),
    import('./client.js'),
    import('./simulate.js'),
    import('./privacy.js'),
    import('./audit.js'),
    import('./provision.js'),
    import('./client-init.js'),
    import('./model.js'),
    import('./bench.js'),
  ]);
}
