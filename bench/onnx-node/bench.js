// Silero VAD through onnxruntime-node 1.30.0: the same model, batch sizes, thread count and timing
// rules as SileroBench.Run in bench/Workers.Bench (run dotnet-bench.cs beside this for the C# side).
//
//   cd bench/onnx-node && npm install && node bench.js [--seconds 3] [--batches 1,8,32,128] [--prealloc] [--json]
//
// Each run is `await session.run(feeds)`, the way onnxruntime-node is used; with --prealloc the outputs
// are passed as preallocated tensors too. Per batch size: 50 untimed runs, then timed runs until at
// least 30 were made and --seconds passed (at most 20000); the median and p90 of single runs are
// reported, and x-realtime = batch x 32 ms of audio / median.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ort = require('onnxruntime-node');

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const seconds = Number(arg('--seconds', '3'));
const batches = arg('--batches', '1,8,32,128').split(',').map(Number);
const prealloc = args.includes('--prealloc');
const asJson = args.includes('--json');
const modelName = arg('--model', 'silero-vad-v5');

const repo = path.resolve(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(repo, 'models', 'models.json'), 'utf8'));
const entry = manifest.models.find((m) => m.name === modelName);
const modelPath = path.join(repo, 'models', entry.file);
if (!fs.existsSync(modelPath)) {
  console.error(`${modelPath} is missing: run \`workers models fetch\` (or the Workers.Onnx tests) first.`);
  process.exit(1);
}

const WINDOW = 512, CONTEXT = 64, ROW = WINDOW + CONTEXT, STATE = 128, RATE = 16000;

function fill(input, batch) {
  // Tone plus noise, as the C# side uses; the values do not change the work done.
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < WINDOW; i++) {
      input[b * ROW + CONTEXT + i] = 0.3 * Math.sin((2 * Math.PI * 220 * i) / RATE) + 0.05 * (Math.random() * 2 - 1);
    }
  }
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

async function main() {
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const results = [];
  for (const batch of batches) {
    const input = new Float32Array(batch * ROW);
    fill(input, batch);
    let state = new ort.Tensor('float32', new Float32Array(2 * batch * STATE), [2, batch, STATE]);
    const feeds = { input: new ort.Tensor('float32', input, [batch, ROW]), state, sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), []) };
    const fetches = prealloc
      ? { output: new ort.Tensor('float32', new Float32Array(batch), [batch, 1]), stateN: new ort.Tensor('float32', new Float32Array(2 * batch * STATE), [2, batch, STATE]) }
      : undefined;
    const run = async () => {
      const out = fetches ? await session.run(feeds, fetches) : await session.run(feeds);
      if (!fetches) feeds.state = out.stateN; // carry the state as a real stream would
      return out;
    };

    for (let i = 0; i < 50; i++) await run();
    const times = [];
    const started = process.hrtime.bigint();
    const minNs = BigInt(Math.round(seconds * 1e9));
    while (times.length < 20000 && (times.length < 30 || process.hrtime.bigint() - started < minNs)) {
      const t0 = process.hrtime.bigint();
      await run();
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    const n = times.length;
    const median = n % 2 ? times[(n - 1) / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
    const audio = (batch * WINDOW) / RATE;
    results.push({ batch, runs: n, medianUs: median, p90Us: percentile(times, 0.9), xRealtime: audio / (median / 1e6) });
  }
  await session.release();

  if (asJson) {
    console.log(JSON.stringify({ runtime: 'onnxruntime-node', version: ort.env.versions.node ?? '1.30.0', prealloc, model: entry.file, results }));
    return;
  }
  console.log(`Silero VAD ${entry.file}, onnxruntime-node ${require('onnxruntime-node/package.json').version}, CPU, intra-op threads 1${prealloc ? ', preallocated outputs' : ''}`);
  console.log('batch      runs   median us      p90 us   x-realtime');
  for (const r of results) {
    console.log(`${String(r.batch).padStart(5)} ${String(r.runs).padStart(9)} ${r.medianUs.toFixed(1).padStart(11)} ${r.p90Us.toFixed(1).padStart(11)} ${r.xRealtime.toFixed(0).padStart(12)}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
