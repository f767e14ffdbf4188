/**
 * What one hop between the main thread and a worker costs on this machine (a measurement kept with
 * its output, round-trip.txt; not part of `pnpm bench`). A ping-pong: the main thread posts a task
 * of STRINGS 200-byte strings (default 100, as a `maxDemand: 100` task of strings carries), the
 * worker answers at once, the next task goes as soon as the answer is in. 3000 round trips after
 * 3000 of warm-up.
 *   node round-trip.mjs port   both sides wait in their event loops (MessagePort, as the pipeline)
 *   node round-trip.mjs wait   the worker, after a task, blocks up to 1 ms in Atomics.wait for the
 *                              next (main notifies) and takes it with receiveMessageOnPort
 *   node round-trip.mjs sync   both block in Atomics.wait (the main thread too: not usable in a
 *                              pipeline, an upper bound for shared-memory signalling)
 * "process cpu per round" is the CPU of the whole process (both threads) per round trip.
 */
import { Worker, MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
const MODE = process.argv[2];
const sab = new SharedArrayBuffer(16); const flags = new Int32Array(sab); // [0]: tasks posted (main->worker), [1]: answers posted (worker->main)
const { port1, port2 } = new MessageChannel();
const w = new Worker(`
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const { port, sab, mode } = workerData; const flags = new Int32Array(sab);
let handled = 0;
function handle(msg) { handled++; port.postMessage({ id: msg.id, n: msg.datas.length }); if (mode !== 'port') { Atomics.store(flags, 1, handled); Atomics.notify(flags, 1); } }
port.on('message', (msg) => {
  handle(msg);
  if (mode === 'port') return;
  // after a task: wait briefly for the next one, synchronously
  for (let k = 0; k < 1; k++) {
    const r = Atomics.wait(flags, 0, handled, 1); // up to 1 ms
    if (r === 'timed-out') break;
    let m; while ((m = receiveMessageOnPort(port))) { handle(m.message); }
  }
});
`, { eval: true, workerData: { port: port2, sab, mode: MODE }, transferList: [port2] });
const datas = Array.from({ length: Number(process.env.STRINGS ?? 100) }, (_, i) => 'x'.repeat(200) + i);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
await sleep(200);
let id = 0;
async function roundPort() { const t0 = performance.now(); port1.postMessage({ id: id++, datas }); Atomics.add(flags, 0, 1); if (MODE !== 'port') Atomics.notify(flags, 0); await new Promise((r) => port1.once('message', r)); return performance.now() - t0; }
function roundSync() { const t0 = performance.now(); const want = Atomics.load(flags, 1) + 1; port1.postMessage({ id: id++, datas }); Atomics.add(flags, 0, 1); Atomics.notify(flags, 0); while (Atomics.load(flags, 1) < want) Atomics.wait(flags, 1, want - 1, 5); let m; while (!(m = receiveMessageOnPort(port1))) {} return performance.now() - t0; }
// steady ping-pong: the next task is posted as soon as the answer is handled (like a one-task slot)
for (const label of ['warm', 'measure']) {
  const N = 3000; let total = 0; const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < N; i++) total += MODE === 'sync' ? roundSync() : await roundPort();
  const c = process.cpuUsage(c0); const wall = performance.now() - t0;
  if (label === 'measure') console.log(MODE.padEnd(6), `${datas.length} strings`, 'round trip', (total * 1000 / N).toFixed(1), 'µs; process cpu per round', ((c.user + c.system) / N).toFixed(1), 'µs');
}
await w.terminate();
