// The simulation engine behind `fedlora simulate` (used by the end-to-end tests too).
export type { SimulationOptions, SimulationReport, SimulationRound, ProgressEvent } from './simulate/run-simulation.js';
export { runSimulation } from './simulate/run-simulation.js';
export { partitionSotu } from './simulate/sotu-partition.js';
export { buildProgram, main } from './main.js';
// A simulated population: identities that check in over one channel, only the cohort materialised (bench/coordinator-registry.ts).
export type { PopulationOptions, PopulationResult } from './simulate/virtual-population.js';
export { runPopulation } from './simulate/virtual-population.js';
export { sotuQa, qaLoraTargets } from './simulate/sotu-qa.js';
