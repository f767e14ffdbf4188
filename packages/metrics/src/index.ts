export { createMetrics, type MetricsOptions, type PipelineMetrics } from './metrics.js';
export { serveMetrics, type ServeMetricsOptions, type MetricsServer } from './serve.js';
export type { GaugeSource } from './source-gauges.js';
