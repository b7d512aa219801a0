// infer_tfjs.js - times TensorFlow.js's wasm backend (XNNPACK, SIMD, one
// thread) on the NSFWJS MobileNetV2-mid network that the
// nsfw_mobilenet_v2 fixture was converted from, fed the fixture's
// input.npy, so that scripts can report it beside nnreg's engine in the
// same run (tests/bench/infer_compare.sh).
//
//   node infer_tfjs.js INPUT.npy EXPECTED.npy [RUNS]
//
// Prints every run, the median in ms, and the largest difference from the
// expected probabilities (proof that it ran the same network).
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const nsfwjs = require('nsfwjs');

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  if (!header.includes("'<f4'")) throw new Error(`${file}: not little-endian float32`);
  const shape = header.match(/\(([^)]*)\)/)[1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + start + hlen, buf.byteOffset + buf.length));
  return { shape, data };
}

async function main() {
  const [inputPath, expectedPath, runsArg] = process.argv.slice(2);
  if (!inputPath || !expectedPath) {
    console.error('usage: node infer_tfjs.js INPUT.npy EXPECTED.npy [RUNS]');
    process.exit(2);
  }
  const runs = Math.min(Math.max(parseInt(runsArg || '20', 10), 1), 1000);
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
  wasm.setThreadsCount(1);
  await tf.setBackend('wasm');
  await tf.ready();
  const net = await nsfwjs.load('MobileNetV2Mid');
  const input = readNpy(inputPath);
  const expected = readNpy(expectedPath);
  const x = tf.tensor(input.data, input.shape, 'float32');
  const once = () => {
    const y = net.model.execute(x);
    const out = y.dataSync();
    y.dispose();
    return out;
  };
  let t = performance.now();
  let out = once();
  console.log(`backend: ${tf.getBackend()}, first run: ${(performance.now() - t).toFixed(1)} ms`);
  const times = [];
  for (let i = 0; i < runs; i++) {
    t = performance.now();
    out = once();
    times.push(performance.now() - t);
  }
  let diff = 0;
  for (let i = 0; i < expected.data.length; i++) diff = Math.max(diff, Math.abs(out[i] - expected.data[i]));
  console.log(`runs (ms): ${times.map((v) => v.toFixed(1)).join(' ')}`);
  const s = [...times].sort((a, b) => a - b);
  const median = runs % 2 ? s[(runs - 1) / 2] : (s[runs / 2 - 1] + s[runs / 2]) / 2;
  console.log(`max abs diff from expected: ${diff.toExponential(2)}`);
  console.log(`median of ${runs}: ${median.toFixed(1)} ms (min ${s[0].toFixed(1)})`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
