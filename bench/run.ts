// npm run bench -- <name...>: runs the named benchmarks (default: all that exist).
import * as fs from 'fs';
import * as path from 'path';

async function main(): Promise<void> {
  const available = fs.readdirSync(__dirname).filter((f) => f.endsWith('.ts') && !['run.ts', 'common.ts'].includes(f)).map((f) => f.slice(0, -3));
  const wanted = process.argv.slice(2);
  for (const name of wanted.length ? wanted : available) {
    if (!available.includes(name)) throw new Error(`unknown benchmark '${name}' (have: ${available.join(', ')})`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.join(__dirname, name)) as { run: () => void | Promise<void> };
    await mod.run();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
