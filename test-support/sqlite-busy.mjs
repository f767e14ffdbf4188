// Shared by the packages' SQLite fixtures (handler modules that threads and child processes load).

/**
 * Runs `step` (say, switching a new file to WAL and creating a table) again while it fails with
 * SQLITE_BUSY, a bounded number of times. Threads and processes run `setup` at the same moment on
 * a new file, and switching it to WAL while another connection creates a table can fail with
 * SQLITE_BUSY at once, without waiting for the busy timeout (SQLite's deadlock avoidance).
 */
export function whileBusy(step) {
  for (let attempt = 1; ; attempt++) {
    try {
      return step();
    } catch (error) {
      if (error?.code !== 'SQLITE_BUSY' || attempt >= 100) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}
