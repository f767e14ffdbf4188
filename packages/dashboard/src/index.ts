export { serveDashboard, type ServeDashboardOptions, type DashboardServer } from './serve.js';
export type { Snapshot, StageView, HistoryPoint } from './snapshot.js';
