#!/usr/bin/env node
// The `joule` command.
import { JouleError } from '../errors';

const USAGE = `usage: joule <command> [options]

commands:
  info [--json]     devices, CPU features, backends found (CUDA, NCCL, Gloo, NVML)
  demo [--quick]    teacher -> distilled student -> int8 student on MNIST: one table of accuracy,
                    size, latency, throughput, MFU and energy (joule demo --help for options)
  launch -n N ...   run a distributed script with N ranks (joule launch --help)
  train --model gpt --data moby-dick [...]   train a character-level GPT (joule train --help)
  generate --checkpoint FILE --prompt TEXT    stream text from a GPT checkpoint
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
    case 'launch': {
      const { launch, parseLaunchArgs } = await import('./launch');
      return launch(parseLaunchArgs(rest));
    }
    case 'train': {
      const { trainCommand } = await import('./train');
      return trainCommand(rest);
    }
    case 'generate': {
      const { generateCommand } = await import('./generate');
      return generateCommand(rest);
    }
    case 'demo': {
      const { demoCommand } = await import('./demo');
      return demoCommand(rest);
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
