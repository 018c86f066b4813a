// deploy_ort_bench.js — the same measurement as deploy_bench.c through ONNX Runtime's Node
// binding (npm onnxruntime-node; NODE_PATH leads to it), with intra-op threads set to THREADS.
// Times are CPU time of the process (user + system, process.cpuUsage): the machine is shared, and
// wall time would measure the other jobs.
//   node deploy_ort_bench.js MODEL.onnx IMAGES.bin COUNT CALLS THREADS D1,D2,...
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, images, countText, callsText, threadsText, dimsText] = process.argv.slice(2);
  const count = Number(countText), calls = Number(callsText), dims = dimsText.split(',').map(Number);
  const per = dims.reduce((a, b) => a * b, 1);
  const bytes = fs.readFileSync(images);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, count * per);
  const session = await ort.InferenceSession.create(model, {intraOpNumThreads: Number(threadsText), interOpNumThreads: 1,
                                                            executionMode: 'sequential', graphOptimizationLevel: 'all'});
  const name = session.inputNames[0];
  const one = (i) => new ort.Tensor('float32', all.subarray((i % count) * per, (i % count + 1) * per), [1, ...dims]);
  for (let i = 0; i < 100; i++) await session.run({[name]: one(i)});
  const t = [];
  for (let i = 0; i < calls; i++) {
    const x = one(i);
    const t0 = process.cpuUsage();
    await session.run({[name]: x});
    const d = process.cpuUsage(t0);
    t.push(d.user + d.system);
  }
  t.sort((a, b) => a - b);
  const big = new ort.Tensor('float32', all.subarray(0, 256 * per), [256, ...dims]);
  for (let i = 0; i < 3; i++) await session.run({[name]: big});
  const b = [];
  for (let i = 0; i < 30; i++) {
    const t0 = process.cpuUsage();
    await session.run({[name]: big});
    const d = process.cpuUsage(t0);
    b.push((d.user + d.system) / 1e3);
  }
  b.sort((x, y) => x - y);
  console.log(JSON.stringify({median_us: t[Math.floor(calls / 2)], p99_us: t[Math.floor(calls * 0.99)], batch256_ms: b[15],
                              images_per_s: 256 / (b[15] / 1e3)}));
}
main().catch((e) => { console.error(`deploy_ort_bench: ${e.message || e}`); process.exit(1); });
