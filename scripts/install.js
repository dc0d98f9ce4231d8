#!/usr/bin/env node
// Runs on `npm install`. Uses a prebuilt addon when one loads here; otherwise builds it:
// with cmake-js when cmake is installed (CUDA included when nvcc is found), else a CPU-only
// build with node-gyp. `--rebuild` always builds (npm run build:native).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const rebuild = process.argv.includes('--rebuild');

function loads(file) {
  // A child process, so that a binary that crashes on load cannot take the install down.
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { stdio: 'ignore' });
  return r.status === 0;
}

function prebuiltAddon() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(dir)) return null;
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.node'));
  return file ? path.join(dir, file) : null;
}

function has(command, args) {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return r.status === 0;
}

function run(command, args) {
  console.log(`joule: ${command} ${args.join(' ')}`);
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (r.error) throw r.error;
  return r.status === 0;
}

function buildWithCmake() {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  const args = [cmakeJs, rebuild ? 'rebuild' : 'compile', '--out', 'build'];
  if (process.env.JOULE_CUDA) args.push(`--CDJOULE_CUDA=${process.env.JOULE_CUDA}`);
  const jobs = process.env.JOULE_BUILD_JOBS || String(require('os').availableParallelism?.() || 2);
  args.push('--parallel', jobs);
  return run(process.execPath, args);
}

function buildWithNodeGyp() {
  // npm tells install scripts where its own node-gyp is.
  const gyp = process.env.npm_config_node_gyp;
  if (gyp) return run(process.execPath, [gyp, 'rebuild']);
  return run('node-gyp', ['rebuild']);
}

function main() {
  if (!rebuild) {
    const prebuilt = prebuiltAddon();
    if (prebuilt && loads(prebuilt)) {
      console.log(`joule: using the prebuilt addon ${path.relative(root, prebuilt)}`);
      return;
    }
    const built = path.join(root, 'build', 'Release', 'joule.node');
    if (fs.existsSync(built) && loads(built)) {
      console.log('joule: the addon is already built (npm run build:native rebuilds it)');
      return;
    }
  }
  const ok = has('cmake', ['--version']) ? buildWithCmake() : buildWithNodeGyp();
  if (!ok) {
    console.error('joule: building the native addon failed (see above). It needs a C++17 compiler and either');
    console.error('       cmake (apt-get install cmake) or node-gyp with python3 and make.');
    process.exit(1);
  }
}

main();
