// The GPT model: tokenizer, KV-cache generation against full recomputation, overfitting a short
// text, checkpoints with config and tokenizer, and the Moby-Dick split.
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { trainGptMobyDick } from '../lib/cli/train';
import * as jl from '../lib/index';

const TEXT = 'the whale, the whale! a dead whale or a stove boat. ';

describe('models.gpt', () => {
  it('the character tokenizer round-trips text and rejects unknown characters', () => {
    const tok = new jl.models.CharTokenizer('hello, world — ünïcode');
    const s = 'world, hello — ünï';
    assert.equal(tok.decode(tok.encode(s)), s);
    assert.equal(tok.vocabSize, new Set(Array.from('hello, world — ünïcode')).size);
    assert.throws(() => tok.encode('xyz'), /not in the vocabulary/);
    assert.equal(tok.decode(tok.encode('hxe', { unknown: 'skip' })), 'he');
    const back = jl.models.CharTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    assert.deepEqual(back.chars, tok.chars);
    assert.throws(() => tok.decode([999]), /out of range/);
  });

  it('generation with the KV cache equals full recomputation token for token at temperature 0', () => {
    jl.manualSeed(1);
    const tok = new jl.models.CharTokenizer(TEXT);
    const model = jl.models.gpt({ vocabSize: tok.vocabSize, context: 24, layers: 2, heads: 2, dim: 32 }, { tokenizer: tok });
    // Larger weights than the initialisation, so that the argmax is not a near-tie.
    jl.noGrad(() => model.parameters().forEach((p) => p.mul_(8)));
    const before = jl.memory().tensors;
    const cached = model.generate('the wh', { maxTokens: 18, temperature: 0 });
    const full = model.generate('the wh', { maxTokens: 18, temperature: 0, cache: false });
    assert.equal(cached.tokens.length, 18);
    assert.deepEqual(cached.tokens, full.tokens);
    assert.equal(cached.text, full.text);
    // Sampling is seeded; streaming sees every token.
    const seen: number[] = [];
    const a = model.generate('the', { maxTokens: 30, temperature: 1, topK: 5, seed: 3, onToken: (id) => seen.push(id) });
    const b = model.generate('the', { maxTokens: 30, temperature: 1, topK: 5, seed: 3 });
    assert.deepEqual(a.tokens, b.tokens);
    assert.deepEqual(seen, a.tokens);
    // Past the context the cache is rebuilt; generation goes on.
    assert.equal(model.generate('t', { maxTokens: 60, temperature: 0 }).tokens.length, 60);
    assert.equal(jl.memory().tensors, before, 'generate leaks no tensors');
    model.dispose();
  });

  it('the composed decoder step gives the modules\' logits (fp32 and int8), falls back for other modules, and checks its input', () => {
    jl.manualSeed(2);
    const tok = new jl.models.CharTokenizer(TEXT);
    const model = jl.models.gpt({ vocabSize: tok.vocabSize, context: 40, layers: 3, heads: 3, dim: 24 }, { tokenizer: tok });
    jl.noGrad(() => model.parameters().forEach((p) => p.mul_(6)));
    const int8 = jl.quant.quantize(model, { mode: 'dynamic' }) as unknown as jl.models.GPT;
    const before = jl.memory().tensors;
    const parts = (m: jl.models.GPT) => ({ tokenEmbedding: m.wte.weight, positionEmbedding: m.wpe.weight, blocks: m.blocks.children(), finalNorm: m.lnF });
    for (const m of [model, int8]) {
      const ids = Array.from(tok.encode('a dead whale or a stove'));
      const viaModules = m.createCache(1);
      const viaDecoder = m.createCache(1);
      const decoder = jl.models.Decoder.tryCreate(parts(m), viaDecoder)!;
      assert.ok(decoder, 'the decoder takes Linear and QuantizedLinear blocks');
      jl.tidy(() => {
        // A prefill of 9 positions, then single positions, as generation does.
        const steps = [ids.slice(0, 9), ...ids.slice(9).map((id) => [id])];
        let start = 0;
        for (const window of steps) {
          const t = jl.tensor(Int32Array.from(window), { shape: [1, window.length], dtype: 'int32' });
          const expected = m.forwardCached(t, viaModules).data();
          const got = decoder.step(t, start).data();
          start += window.length;
          let worst = 0;
          for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]) / (1 + Math.abs(expected[i])));
          assert.ok(worst < 1e-5, `logits at ${start}: max relative difference ${worst}`);
        }
        // The caches were written alike.
        const k1 = viaModules[2].k.data();
        const k2 = viaDecoder[2].k.data();
        for (let i = 0; i < k1.length; i++) assert.ok(Math.abs(k1[i] - k2[i]) <= 1e-5 * (1 + Math.abs(k1[i])));
        // Positions past the context, ids of the wrong dtype and out-of-range ids are errors.
        assert.throws(() => decoder.step(jl.tensor(Int32Array.from([1]), { shape: [1, 1], dtype: 'int32' }), 40), (e: jl.JouleError) => e.code === 'INVALID_ARGUMENT' && /context/.test(e.message));
        assert.throws(() => decoder.step(jl.zeros([1, 1]), 0), (e: jl.JouleError) => e.code === 'INVALID_ARGUMENT' && /int32 token ids/.test(e.message));
        assert.throws(() => decoder.step(jl.tensor(Int32Array.from([999]), { shape: [1, 1], dtype: 'int32' }), 0), (e: jl.JouleError) => e.code === 'INVALID_ARGUMENT');
      });
      decoder.release();
      assert.throws(() => jl.tidy(() => decoder.step(jl.zeros([1, 1]), 0)), /released/);
      for (const c of [...viaModules, ...viaDecoder]) {
        c.k.dispose();
        c.v.dispose();
      }
      // Generation through the decoder and through the modules agree token for token.
      const fused = m.generate('the wh', { maxTokens: 50, temperature: 0 });
      const modules = m.generate('the wh', { maxTokens: 50, temperature: 0, fused: false });
      assert.deepEqual(fused.tokens, modules.tokens);
    }
    // A block the decoder does not implement (a subclass may change forward) runs through the modules.
    class ScaledBlock extends jl.nn.TransformerBlock {}
    const caches = model.createCache(1);
    const custom = { ...parts(model), blocks: [new ScaledBlock(24, 3), ...model.blocks.children().slice(1)] };
    assert.equal(jl.models.Decoder.tryCreate(custom, caches), null);
    custom.blocks[0].dispose();
    // A description that does not fit is refused with the part named.
    const bad = model.createCache(2);
    assert.throws(() => jl.models.Decoder.tryCreate(parts(model), bad.slice(0, 2).concat(caches.slice(2))), (e: jl.JouleError) => e.code === 'SHAPE_MISMATCH' && /layer 2 caches/.test(e.message));
    for (const c of [...caches, ...bad]) {
      c.k.dispose();
      c.v.dispose();
    }
    assert.equal(jl.memory().tensors, before, 'no tensor leaks');
    int8.dispose();
    model.dispose();
  });

  it('a tiny GPT overfits a short text to near-zero loss', () => {
    jl.manualSeed(0);
    const tok = new jl.models.CharTokenizer(TEXT);
    const ids = tok.encode(TEXT);
    const T = ids.length - 1;
    const model = jl.models.gpt({ vocabSize: tok.vocabSize, context: T, layers: 2, heads: 2, dim: 32 }, { tokenizer: tok });
    const opt = new jl.optim.AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
    const x = jl.tensor(ids.slice(0, T), { dtype: 'int32', shape: [1, T] }).keep();
    const y = jl.tensor(ids.slice(1), { dtype: 'int32', shape: [1, T] }).keep();
    let loss = Infinity;
    for (let step = 0; step < 200 && loss > 0.02; step++) {
      loss = jl.tidy(() => {
        const l = model.loss(x, y);
        opt.zeroGrad();
        l.backward();
        jl.optim.clipGradNorm(model.parameters(), 1);
        opt.step();
        return l.item();
      });
    }
    assert.ok(loss < 0.05, `loss ${loss}`);
    // And it reproduces the text from its first characters.
    const out = model.generate(TEXT.slice(0, 4), { maxTokens: 20, temperature: 0 });
    assert.equal(out.text, TEXT.slice(4, 24));
    x.dispose();
    y.dispose();
    model.dispose();
  });

  it('save() / GPT.load() keep the config, the tokenizer and the weights', () => {
    jl.manualSeed(2);
    const tok = new jl.models.CharTokenizer(TEXT);
    const model = jl.models.gpt({ vocabSize: tok.vocabSize, context: 8, layers: 1, heads: 2, dim: 16 }, { tokenizer: tok });
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'joule-gpt-')), 'm.safetensors');
    model.save(file, { step: 5 });
    const back = jl.models.GPT.load(file);
    assert.deepEqual(back.config, model.config);
    assert.deepEqual(back.tokenizer!.chars, tok.chars);
    jl.tidy(() => {
      const x = jl.tensor(tok.encode('the whal'), { dtype: 'int32', shape: [1, 8] });
      assert.deepEqual(back.forward(x).data(), model.forward(x).data());
    });
    model.dispose();
    back.dispose();
    fs.rmSync(path.dirname(file), { recursive: true });
  });

  it('the Moby-Dick split holds out the last ten chapters and the epilogue; windows are seeded', () => {
    const md = jl.text.mobyDick();
    assert.equal(md.trainFiles.length, 125);
    assert.deepEqual(md.validationFiles.slice(-2), ['chapter_135.txt', 'epilogue.txt']);
    assert.ok(md.train.startsWith('CHAPTER 1. Loomings.\n\nCall me Ishmael.'));
    assert.ok(md.train.length > 1_000_000 && md.validation.length > 50_000);
    const tok = new jl.models.CharTokenizer(md.train + md.validation);
    const ids = tok.encode(md.train);
    const ds = new jl.text.TextWindowDataset(ids, 16, { length: 100, seed: 4 });
    jl.tidy(() => {
      const b = ds.getBatch(Int32Array.of(3, 3, 7));
      const xs = b.x.data() as Int32Array;
      const ys = b.y.data() as Int32Array;
      assert.deepEqual(Array.from(xs.subarray(0, 16)), Array.from(xs.subarray(16, 32)));
      assert.deepEqual(Array.from(xs.subarray(1, 16)), Array.from(ys.subarray(0, 15)));
      assert.equal(new jl.text.TextWindowDataset(ids, 16, { length: 100, seed: 4 }).start(7), ds.start(7));
    });
  });

  it('joule train anneals the learning rate by the end of the steps or of the time budget, whichever comes first', async function () {
    this.timeout(60_000);
    const tiny = { layers: 1, heads: 1, dim: 16, context: 16, batch: 2, lr: 1e-2, minLr: 1e-4, warmup: 2, evalEvery: 1e9, finalEvalTokens: 256, log: () => {} };
    const bySteps = await trainGptMobyDick({ ...tiny, steps: 12 });
    assert.equal(bySteps.steps, 12);
    assert.ok(Math.abs(bySteps.lastLr - 1e-4) < 1e-12, `lr after the last step: ${bySteps.lastLr}`);
    bySteps.model.dispose();
    // 0.02 minutes with a million steps planned: the time budget ends the run, and the cosine with it.
    const byTime = await trainGptMobyDick({ ...tiny, steps: 1_000_000, minutes: 0.02 });
    assert.ok(byTime.steps > 2 && byTime.steps < 1_000_000, `steps: ${byTime.steps}`);
    assert.ok(Math.abs(byTime.lastLr - 1e-4) < 1e-12, `lr when the time ran out: ${byTime.lastLr}`);
    assert.ok(Number.isFinite(byTime.valBpc));
    byTime.model.dispose();
  });
});
