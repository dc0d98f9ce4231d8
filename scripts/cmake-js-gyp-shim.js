#!/usr/bin/env node
// prebuildify runs `<node-gyp> rebuild --target=… --release …`; this stands in for node-gyp and
// builds with cmake-js instead, so the prebuilt binary is the same one `npm install` builds.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const r = spawnSync(process.execPath, [cmakeJs, 'rebuild', '--out', 'build'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
