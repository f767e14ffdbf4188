/**
 * Handler module of the poison check (runs in processor threads). A payload `exit:<n>` ends its
 * thread with process.exit, `oom:<n>` allocates until the thread's heap limit (resourceLimits)
 * kills it; anything else succeeds.
 */
import { definePipeline } from '@throughway/workers';

export default definePipeline({
  handleMessage(_processor, message) {
    const text = String(message.data);
    if (text.startsWith('exit:')) process.exit(1);
    if (text.startsWith('oom:')) {
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array<number>(1 << 20).fill(hoard.length));
    }
    return message;
  },
});
