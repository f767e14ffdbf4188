import os from 'node:os';

export interface MachineInfo {
  cpu: string;
  cores: number;
  totalMemoryMiB: number;
  node: string;
  v8: string;
  platform: string;
  date: string;
  /** 1/5/15-minute load averages when the run started: other work on the machine skews the figures. */
  loadAverage: number[];
  /** The same when the run ended. */
  loadAverageEnd?: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    totalMemoryMiB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}
