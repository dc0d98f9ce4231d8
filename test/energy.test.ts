// Metering: the kernels' FLOP count, the CPU peak, MFU and energy (or why it was not measured).
import assert from 'node:assert/strict';
import * as jl from '../lib/index';

describe('energy and cost metering', function () {
  this.timeout(60000);

  it('counts 2MNK FLOPs per GEMM and one per element of an elementwise op', () => {
    jl.tidy(() => {
      const a = jl.randn([33, 17]);
      const b = jl.randn([17, 65]);
      let f0 = jl.energy.flopCount();
      a.matmul(b);
      assert.equal(jl.energy.flopCount() - f0, 2 * 33 * 17 * 65);
      f0 = jl.energy.flopCount();
      jl.add(a, a);
      assert.equal(jl.energy.flopCount() - f0, 33 * 17);
      f0 = jl.energy.flopCount();
      const x = jl.randn([8, 784]);
      const layer = new jl.nn.Linear(784, 10);
      jl.noGrad(() => layer.forward(x));
      assert.ok(jl.energy.flopCount() - f0 >= 2 * 8 * 784 * 10, 'the fused Linear counts its GEMM');
      layer.dispose();
    });
  });

  it('measures a positive CPU peak, and the same value again within a process', () => {
    const p = jl.energy.cpuPeak(1);
    assert.ok(p > 1e9 && p < 1e13, `peak ${p}`);
    assert.equal(jl.energy.cpuPeak(1), p);
  });

  it('knows GPU peaks by name, and returns null for an unknown GPU', () => {
    assert.ok(jl.energy.gpuPeak('NVIDIA H200', 'bf16')! > 9e14);
    assert.ok(jl.energy.gpuPeak('NVIDIA A100-SXM4-80GB', 'tf32')! > 1e14);
    assert.equal(jl.energy.gpuPeak('Some Future GPU'), null);
  });

  it('reports seconds, FLOPs, MFU and energy or the reason it was not measured', () => {
    const meter = new jl.energy.CostMeter('cpu').start();
    jl.tidy(() => {
      const a = jl.randn([256, 256]);
      for (let i = 0; i < 20; i++) a.matmul(a);
    });
    const r = meter.stop();
    assert.ok(r.seconds > 0);
    assert.ok(r.flops >= 20 * 2 * 256 ** 3);
    assert.ok(r.mfu !== null && r.mfu > 0 && r.mfu < 1.5, `mfu ${r.mfu}`);
    if (r.joules === null) assert.ok(r.energySource.length > 10, 'a reason is given when energy is not measured');
    else assert.ok(r.joules >= 0 && /RAPL|NVML/.test(r.energySource));
  });

  it('a GPU meter without NVML says why', function () {
    if (jl.cudaAvailable().available) this.skip();
    const r = new jl.energy.CostMeter('cuda:0').start().stop();
    assert.equal(r.joules, null);
    assert.match(r.energySource, /NVML|nvidia/i);
  });
});
