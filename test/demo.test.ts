import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as jl from '../lib/index';

const ROOT = path.resolve(__dirname, '..');

describe('joule demo', function () {
  this.timeout(180000);

  it('the built `joule` command is executable (what `npx joule` runs) and answers `info`', function () {
    const bin = path.join(ROOT, (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: { joule: string } }).bin.joule);
    if (!fs.existsSync(bin)) this.skip();  // not built yet: npm install / npm run build:ts makes it
    assert.ok((fs.statSync(bin).mode & 0o111) !== 0, `${bin} is not executable: npx joule would fail with "Permission denied"`);
    const r = spawnSync(bin, ['info'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stderr}`);
    assert.match(r.stdout, /joule/i);
  });

  it('`joule demo --quick --json` fills every column of its table (or names the reason) and writes an HTML report', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joule-demo-test-'));
    const html = path.join(dir, 'report.html');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'lib/cli/main.ts'), 'demo', '--quick', '--json', '--report', html],
      { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stderr}`);
    const out = JSON.parse(r.stdout) as {
      columns: { key: string }[];
      rows: (jl.demo.DemoRow & { text: Record<string, string> })[];
      teacherToInt8: { timePerSample256: number; size: number; accuracyLoss: number };
      curves: jl.demo.DemoCurve[];
    };
    // Progress went to stderr: a line per phase and the Trainer's epochs.
    for (let i = 1; i <= 6; i++) assert.match(r.stderr, new RegExp(`\\[demo ${i}/6\\]`));
    assert.match(r.stderr, /epoch 1\//);
    assert.match(r.stderr, /teacher\s+784-/, 'the table is printed (to stderr when JSON goes to stdout)');
    assert.deepEqual(out.rows.map((x) => x.model), ['teacher', 'student (labels)', 'student (distilled)', 'student (distilled, int8)']);
    for (const row of out.rows) {
      for (const c of out.columns) {
        const text = row.text[c.key];
        assert.ok(typeof text === 'string' && text.length > 0 && !/NaN|undefined|null/.test(text), `${row.model}: column ${c.key} is '${text}'`);
        if (text.startsWith('-')) assert.match(text, /^- \(.{4,}\)$/, `${row.model}: an empty ${c.key} must name its reason`);
      }
      assert.ok(row.parameters > 0 && row.sizeBytes > 0 && row.latencyMs1 > 0 && row.latencyMs256 > 0 && row.throughput > 0);
      assert.ok(row.testAccuracy > 0.8 && row.testAccuracy <= 1, `${row.model}: accuracy ${row.testAccuracy}`);
      if (row.precision === 'fp32') {
        assert.ok(row.trainSeconds! > 0);
        assert.ok(row.mfu === null ? Boolean(row.mfuNote) : row.mfu > 0 && row.mfu < 1.5);
        assert.ok(row.joules !== null || Boolean(row.energyNote));
      }
    }
    const [teacher, , fp32, int8] = out.rows;
    // The int8 file: int8 weights plus fp32 scales and biases, about 4x smaller than fp32.
    assert.ok(fp32.sizeBytes / int8.sizeBytes > 3.8, `int8 is ${(fp32.sizeBytes / int8.sizeBytes).toFixed(2)}x smaller`);
    assert.ok(Math.abs(fp32.testAccuracy - int8.testAccuracy) < 0.01, `fp32 ${fp32.testAccuracy} vs int8 ${int8.testAccuracy}`);
    assert.ok(teacher.parameters > 3 * int8.parameters);
    assert.ok(out.teacherToInt8.size > 10);
    assert.equal(out.curves.length, 3);
    for (const c of out.curves) assert.ok(c.epochs.length > 0 && c.epochs.every((e) => Number.isFinite(e.loss) && e.valAccuracy !== null));
    // The report is one self-contained page: table, inline SVG charts, nothing fetched.
    const page = fs.readFileSync(html, 'utf8');
    assert.match(page, /^<!DOCTYPE html>/);
    assert.match(page, /<table>/);
    assert.equal((page.match(/<svg /g) ?? []).length, 2);
    assert.doesNotMatch(page, /<script|<link|src=|@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('distillation beats the label-only student on each of 5 seeds (teacher trained on 60,000 images, students on 5,000)', async function () {
    this.timeout(600_000);
    const r = await jl.demo.distillationMargins([0, 1, 2, 3, 4]);
    const table = r.seeds.map((s) => `seed ${s.seed}: labels ${(s.labels * 100).toFixed(2)}%, distilled ${(s.distilled * 100).toFixed(2)}%, margin ${s.marginPoints.toFixed(2)}`).join('\n');
    console.log(`      teacher ${(r.teacherAccuracy * 100).toFixed(2)}%; ${r.seconds.toFixed(0)} s\n${table.replace(/^/gm, '      ')}\n      mean margin ${r.meanMarginPoints.toFixed(2)} points`);
    for (const s of r.seeds) assert.ok(s.marginPoints > MIN_MARGIN, `seed ${s.seed}: margin ${s.marginPoints.toFixed(2)} points\n${table}`);
    assert.ok(r.meanMarginPoints >= MEAN_MARGIN, `mean margin ${r.meanMarginPoints.toFixed(2)} points\n${table}`);
  });
});

/**
 * Margins (points) asserted: the target is a mean of +0.3 points over 5 seeds; every seed
 * must clear it too. Measured with MARGIN_CONFIG (2026-11-29): +1.43, +1.72, +1.63, +1.69, +1.58
 * (mean +1.61; label-only students 94.4-94.7 %, teacher 97.8 %).
 */
const MIN_MARGIN = 0.3;
const MEAN_MARGIN = 0.3;
