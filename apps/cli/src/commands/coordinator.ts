import type { Command } from 'commander';
import { loadCoordinatorConfig, startCoordinatorFromConfig } from '@fedlora/coordinator';
import { CliError, info, printJson } from '../output.js';

/** `fedlora coordinator --config FILE`: runs the federation's coordinator. */
export function register(program: Command): void {
  program
    .command('coordinator')
    .description('Run the coordinator: gRPC server, round loop, SQLite state in dataDir (resumes after a restart)')
    .requiredOption('-c, --config <file>', 'coordinator YAML config (fedlora provision writes one)')
    .option('--exit-when-done', 'exit 0 once the configured rounds are committed (for scripts and tests)')
    .option('--json', 'print a JSON summary on stdout when the run ends')
    .addHelpText('after', '\nEvery config key can be overridden from the environment as FEDLORA_<SECTION>_<KEY>, e.g. FEDLORA_ROUNDS_TOTAL=10.')
    .action(async (o: { config: string; exitWhenDone?: boolean; json?: boolean }) => {
      const cfg = loadCoordinatorConfig(o.config);
      const c = await startCoordinatorFromConfig(cfg);
      info(`fedlora coordinator: federation ${cfg.federationId} listening on port ${c.app.port} (backend ${c.backend}${cfg.insecure ? ', INSECURE: no TLS' : ', TLS'})`);
      const stop = async (signal: string) => {
        info(`fedlora coordinator: ${signal}, shutting down`);
        await c.close();
        process.exit(130);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
      let history;
      try {
        history = await c.done;
      } catch (err) {
        await c.close();
        throw new CliError(`the run failed: ${(err as Error).message}`);
      }
      const summary = { federationId: cfg.federationId, state: 'finished', rounds: history, finalAdapterDir: `${cfg.dataDir}/final-adapter` };
      if (o.json) printJson(summary);
      else info(`fedlora coordinator: all ${cfg.rounds.total} rounds committed; final adapter in ${summary.finalAdapterDir}`);
      if (o.exitWhenDone) {
        await c.app.coordinator.drain(15_000);
        await c.close();
        return;
      }
      info('fedlora coordinator: run finished; still serving status (Ctrl-C to exit, or use --exit-when-done)');
      await new Promise(() => {});
    });
}
