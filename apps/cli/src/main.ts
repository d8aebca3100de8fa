import { Command, CommanderError } from 'commander';
import { loadCommands } from './commands/index.js';
import { CliError } from './output.js';

/** Builds the `fedlora` program with every subcommand registered. */
export async function buildProgram(): Promise<Command> {
  const program = new Command('fedlora')
    .description('Federated, privacy-preserving LoRA fine-tuning of language models')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');
  for (const m of await loadCommands()) m.register(program);
  return program;
}

/** Runs the CLI; turns errors into a message on stderr and a non-zero exit code. */
export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof CliError) {
      process.stderr.write(`fedlora: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    // Typed errors carry a message written for the reader; the stack only helps developers.
    const debug = process.env.FEDLORA_DEBUG === '1';
    const text = err instanceof Error ? (debug ? (err.stack ?? err.message) : `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`) : String(err);
    process.stderr.write(`fedlora: ${text}${debug ? '' : '\n(set FEDLORA_DEBUG=1 for a stack trace)'}\n`);
    process.exitCode = 1;
  }
}
