// `joule demo` as an API: run() trains teacher -> students -> int8 student and measures them;
// formatTable / tableJson / htmlReport render the result.
export { run, DEFAULT_CONFIG, QUICK_CONFIG, shortEnergyReason } from './run';
export type { DemoConfig, DemoOptions, DemoResult, DemoRow, DemoCurve, DemoProgress, Phase } from './run';
export { COLUMNS, formatTable, tableJson } from './table';
export type { Column } from './table';
export { htmlReport } from './report';
export { countParameters, sizeOnDisk, testAccuracy, latencyMs } from './measure';
export { distillationMargins, MARGIN_CONFIG } from './margins';
export type { MarginConfig, MarginResult } from './margins';
