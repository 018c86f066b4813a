// ort_run.js — runs an ONNX model in ONNX Runtime (npm's onnxruntime-node) for deploy.py.
//   node ort_run.js MODEL.onnx IN.bin float32|int32 N,D1,D2,... OUT.bin [THREADS [BATCH]]
// reads the input tensor (raw little-endian), runs it through the model's one input in batches
// of BATCH (default: all at once), and writes the first output's floats to OUT.bin.
// NODE_PATH must lead to the onnxruntime-node package (the test installs it).
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input, dtype, dimsText, output, threadsText, batchText] = process.argv.slice(2);
  const dims = dimsText.split(',').map(Number);
  const n = dims[0], per = dims.slice(1).reduce((a, b) => a * b, 1);
  const bytes = fs.readFileSync(input);
  const all = dtype === 'int32' ? new Int32Array(bytes.buffer, bytes.byteOffset, n * per)
                                : new Float32Array(bytes.buffer, bytes.byteOffset, n * per);
  const threads = Number(threadsText || 1);
  const session = await ort.InferenceSession.create(model, {intraOpNumThreads: threads, interOpNumThreads: 1,
                                                            executionMode: 'sequential'});
  const batch = Number(batchText || n);
  const parts = [];
  for (let start = 0; start < n; start += batch) {
    const nb = Math.min(batch, n - start);
    const x = new ort.Tensor(dtype, all.subarray(start * per, (start + nb) * per), [nb, ...dims.slice(1)]);
    const result = await session.run({[session.inputNames[0]]: x});
    parts.push(Buffer.from(result[session.outputNames[0]].data.buffer.slice(0)));
  }
  fs.writeFileSync(output, Buffer.concat(parts));
  console.log(`ort_run: ${n} examples, input ${session.inputNames[0]}, output ${session.outputNames[0]}`);
}
main().catch((e) => { console.error(`ort_run: ${e.message || e}`); process.exit(1); });
