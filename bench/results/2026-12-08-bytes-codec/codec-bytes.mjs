const dir = process.argv[2];
const { encodeValues, decodeValues } = await import(`${dir}/packages/workers/dist/payload-codec.js`);
const N = 100;
const vals = Array.from({ length: N }, (_, i) => [new Uint8Array(Buffer.from(`{"order":${i},"customer":"cus_${i % 997}","amount":${100 + i}}`)), {}]);
const bufs = Array.from({ length: N }, (_, i) => [Buffer.from(`{"order":${i},"customer":"cus_${i % 997}","amount":${100 + i}}`), {}]);
function t(name, f) { for (let w = 0; w < 300; w++) f(); const r = []; for (let k = 0; k < 5; k++) { const t0 = performance.now(); let n = 0; while (performance.now() - t0 < 200) { f(); n++; } r.push((performance.now() - t0) * 1000 / n / N); } r.sort((a, b) => a - b); console.log(name.padEnd(30), r[2].toFixed(3), 'µs/value (median of 5)'); }
const enc = encodeValues(vals), encB = encodeValues(bufs);
t('encode Uint8Array', () => encodeValues(vals));
t('decode Uint8Array', () => decodeValues(enc));
t('encode Buffer', () => encodeValues(bufs));
t('decode Buffer', () => decodeValues(encB));
