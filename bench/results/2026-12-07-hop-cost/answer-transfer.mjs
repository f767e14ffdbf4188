/**
 * What a processor task's answer costs to post and receive (send + receive CPU, one thread; output in
 * answer-transfer.txt): as it was before c5e6539 ("current": values and offsets in two moved
 * ArrayBuffers, per-call offsets as views), with one moved ArrayBuffer ("one buffer", c5e6539), and
 * two shapes not adopted (no views; routing columns as one array).
 */
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
function bench(label, make, transfer) {
  const reps = 20000; let got = 0;
  return new Promise((resolve) => {
    const t0 = performance.now(); const c0 = process.cpuUsage(); let sendUs;
    port2.on('message', function f() { if (++got === reps) { port2.off('message', f); const c = process.cpuUsage(c0); console.log(label.padEnd(16), 'send', sendUs.toFixed(2), 'µs; send+recv cpu', ((c.user + c.system) / reps).toFixed(2), 'µs'); resolve(); } });
    for (let i = 0; i < reps; i++) { const a = make(); port1.postMessage({ id: i, result: a }, transfer(a)); }
    sendUs = (performance.now() - t0) * 1000 / reps;
  });
}
const cur = () => { const buffer = new Uint8Array(900); const off = new Uint32Array(102);
  return { outputs: [
    { size: 50, busyMs: 0.0081, batchers: { all: 'default' }, batchKeys: { all: 'default' }, batchModes: { all: 'bulk' } },
    { size: 50, busyMs: 0.0070, batchers: { all: 'default' }, batchKeys: { all: 'default' }, batchModes: { all: 'bulk' } } ],
    threadId: 4, buffer, offsets: [off.subarray(0, 51), off.subarray(50, 102)], busyMs: 0.048 }; };
const curOne = () => { const ab = new ArrayBuffer(900 + 408); const buffer = new Uint8Array(ab, 0, 900); const off = new Uint32Array(ab, 900, 102);
  return { outputs: [
    { size: 50, busyMs: 0.0081, batchers: { all: 'default' }, batchKeys: { all: 'default' }, batchModes: { all: 'bulk' } },
    { size: 50, busyMs: 0.0070, batchers: { all: 'default' }, batchKeys: { all: 'default' }, batchModes: { all: 'bulk' } } ],
    threadId: 4, buffer, offsets: [off.subarray(0, 51), off.subarray(50, 102)], busyMs: 0.048 }; };
const oneNoViews = () => { const ab = new ArrayBuffer(900 + 408);
  return { outputs: [
    { size: 50, busyMs: 0.0081, batchers: { all: 'default' }, batchKeys: { all: 'default' }, batchModes: { all: 'bulk' } },
    { size: 50, busyMs: 0.0070, batchers: { all: 'default' }, batchKeys: { all: 'default' }, batchModes: { all: 'bulk' } } ],
    threadId: 4, ab, at: 900, busyMs: 0.048 }; };
const routeArr = () => { const ab = new ArrayBuffer(900 + 408);
  return { outputs: [
    { size: 50, busyMs: 0.0081, route: ['default', 'default', 'bulk'] },
    { size: 50, busyMs: 0.0070, route: ['default', 'default', 'bulk'] } ],
    threadId: 4, ab, at: 900, busyMs: 0.048 }; };
for (let k = 0; k < 3; k++) {
await bench('current', cur, (a) => [a.buffer.buffer, a.offsets[0].buffer]);
await bench('one buffer', curOne, (a) => [a.buffer.buffer]);
await bench('one, no views', oneNoViews, (a) => [a.ab]);
await bench('one+route', routeArr, (a) => [a.ab]);
}
port1.close();
