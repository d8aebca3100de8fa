// The simulation engine behind `fedlora simulate` (used by the end-to-end tests too).
export type { SimulationOptions, SimulationReport, SimulationRound, ProgressEvent } from './simulate/run-simulation.js';
export { runSimulation } from './simulate/run-simulation.js';
export { partitionSotu } from './simulate/sotu-partition.js';
export { buildProgram, main } from './main.js';
export { sotuQa, qaLoraTargets } from './simulate/sotu-qa.js';
