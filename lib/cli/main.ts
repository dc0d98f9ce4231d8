#!/usr/bin/env node
// The `joule` command.
import { JouleError } from '../errors';

const USAGE = `usage: joule <command> [options]

commands:
  info [--json]     devices, CPU features, backends found (CUDA, NCCL, Gloo, NVML)
  help              this text
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'info': {
      const { printInfo } = await import('./info');
      printInfo(rest.includes('--json'));
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`joule: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    if (e instanceof JouleError) process.stderr.write(`joule: ${e.code}: ${e.message}\n`);
    else process.stderr.write(`joule: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
