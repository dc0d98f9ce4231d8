// `joule demo`: the main job on the bundled MNIST, one table; --json and --report for files.
import * as fs from 'fs';
import { fail } from '../errors';
import { formatTable, htmlReport, run, tableJson } from '../demo/index';

export const DEMO_USAGE = `usage: joule demo [--quick] [--seed N] [--epochs N] [--teacher-epochs N] [--json [file]] [--report file.html] [--quiet]

Trains a teacher MLP on MNIST, a small student twice (from labels alone, and distilled from the
teacher), quantizes the distilled student to int8, and prints one table: parameters, size on
disk, test accuracy, latency at batch 1 and 256, throughput, training time, MFU, energy, and the
cost relative to the teacher.

  --quick             a data subset, a smaller teacher, fewer epochs (about 30 s on 2 cores)
  --seed N            seed of the initialisations, the data subset and order (default 0)
  --epochs N          epochs of the students
  --teacher-epochs N  epochs of the teacher
  --json [file]       write the table as JSON to file (or to stdout, the table then going to stderr)
  --report file.html  write a self-contained HTML page with the table and training curves
  --quiet             no progress output
`;

function intArg(args: string[], i: number, name: string): number {
  const v = args[i + 1];
  if (v === undefined || !/^\d+$/.test(v)) fail('INVALID_ARGUMENT', `demo: ${name} expects a non-negative integer, got ${v === undefined ? 'nothing' : `'${v}'`}`);
  return Number(v);
}

export async function demoCommand(args: string[]): Promise<number> {
  let quick = false;
  let quiet = false;
  let seed = 0;
  let epochs: number | undefined;
  let teacherEpochs: number | undefined;
  let json: string | null | undefined; // undefined: no JSON; null: stdout
  let report: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--quick') quick = true;
    else if (a === '--quiet') quiet = true;
    else if (a === '--seed') seed = intArg(args, i++, '--seed');
    else if (a === '--epochs') epochs = intArg(args, i++, '--epochs');
    else if (a === '--teacher-epochs') teacherEpochs = intArg(args, i++, '--teacher-epochs');
    else if (a === '--json') {
      const next = args[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        json = next;
        i++;
      } else json = null;
    } else if (a === '--report') {
      const next = args[i + 1];
      if (next === undefined || next.startsWith('--')) fail('INVALID_ARGUMENT', 'demo: --report expects a file name (e.g. --report demo.html)');
      report = next;
      i++;
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(DEMO_USAGE);
      return 0;
    } else {
      process.stderr.write(`joule demo: unknown option '${a}'\n\n${DEMO_USAGE}`);
      return 2;
    }
  }
  if ((epochs !== undefined && epochs < 1) || (teacherEpochs !== undefined && teacherEpochs < 1)) fail('INVALID_ARGUMENT', 'demo: epochs must be at least 1');
  const result = await run({ quick, seed, epochs, teacherEpochs, quiet });
  const table = formatTable(result);
  // With JSON on stdout, the table goes to stderr so that stdout stays parseable.
  (json === null ? process.stderr : process.stdout).write(`\n${table}\n`);
  const text = JSON.stringify(tableJson(result), null, 2) + '\n';
  if (json === null) process.stdout.write(text);
  else if (json !== undefined) {
    fs.writeFileSync(json, text);
    if (!quiet) process.stderr.write(`JSON written to ${json}\n`);
  }
  if (report !== undefined) {
    fs.writeFileSync(report, htmlReport(result));
    if (!quiet) process.stderr.write(`report written to ${report}\n`);
  }
  return 0;
}
